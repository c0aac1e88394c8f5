// Fused CPU kernels for the logic layer (see train/functional.py for the math).
// Layout: neuron-major, x[in_dim][B], y[N][B], all float32 and contiguous.
// Threads come from PyTorch's own pool (at::parallel_for), so torch.set_num_threads governs them and
// no second OpenMP runtime competes with PyTorch's.
#include <torch/extension.h>

#include <atomic>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>
#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace {

void check(const torch::Tensor& x, const torch::Tensor& ia, const torch::Tensor& ib, const torch::Tensor& coef) {
  TORCH_CHECK(x.dim() == 2 && x.is_contiguous() && x.scalar_type() == torch::kFloat32, "x: [in, B] float32 contiguous");
  TORCH_CHECK(ia.scalar_type() == torch::kInt64 && ib.scalar_type() == torch::kInt64, "ia/ib: int64");
  TORCH_CHECK(coef.dim() == 2 && coef.size(1) == 4 && coef.is_contiguous(), "coef: [N, 4] contiguous");
}

// Rows per task so that a task touches about 16K elements.
int64_t grain(int64_t row_len) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, row_len)); }

// kBits[v][t] = bit t of byte v as 0.0f / 1.0f: turns a packed byte into 8 float activations.
struct BitTable {
  alignas(32) float v[256][8];
  BitTable() {
    for (int i = 0; i < 256; ++i)
      for (int t = 0; t < 8; ++t) v[i][t] = static_cast<float>((i >> t) & 1);
  }
};
const BitTable kBits;

#if defined(__AVX2__)
inline __m256i fmix32v(__m256i x) {
  x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
  x = _mm256_mullo_epi32(x, _mm256_set1_epi32(static_cast<int>(0x85EBCA6Bu)));
  x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 13));
  x = _mm256_mullo_epi32(x, _mm256_set1_epi32(static_cast<int>(0xC2B2AE35u)));
  return _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
}
// Horizontal max / sum of 8 lanes, broadcast to every lane.
inline __m256 hmax8(__m256 v) {
  v = _mm256_max_ps(v, _mm256_permute2f128_ps(v, v, 1));
  v = _mm256_max_ps(v, _mm256_shuffle_ps(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm256_max_ps(v, _mm256_shuffle_ps(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
}
inline __m256 hsum8(__m256 v) {
  v = _mm256_add_ps(v, _mm256_permute2f128_ps(v, v, 1));
  v = _mm256_add_ps(v, _mm256_shuffle_ps(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm256_add_ps(v, _mm256_shuffle_ps(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
}
inline float first(__m256 v) { return _mm256_cvtss_f32(v); }
// Natural log of positive, normal floats (Cephes' logf polynomial, about 1 ulp; no special cases):
// x = m * 2^e with m in [sqrt(1/2), sqrt(2)), log x = e * ln 2 + log m. Used for the Gumbel noise only.
inline __m256 log8_fast(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256i xi = _mm256_castps_si256(x);
  __m256 e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(xi, 23), _mm256_set1_epi32(126)));
  __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(xi, _mm256_set1_epi32(0x007FFFFF)),
                                                 _mm256_set1_epi32(0x3F000000)));  // [0.5, 1)
  const __m256 small = _mm256_cmp_ps(m, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
  e = _mm256_sub_ps(e, _mm256_and_ps(one, small));
  m = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(m, small)), one);  // m - 1 (or 2m - 1)
  const __m256 z = _mm256_mul_ps(m, m);
  __m256 y = _mm256_set1_ps(7.0376836292e-2f);
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-1.1514610310e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(1.1676998740e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-1.2420140846e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(1.4249322787e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-1.6668057665e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(2.0000714765e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-2.4999993993e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(3.3333331174e-1f));
  y = _mm256_mul_ps(_mm256_mul_ps(y, m), z);
  y = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), y);
  y = _mm256_fnmadd_ps(z, _mm256_set1_ps(0.5f), y);
  return _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), _mm256_add_ps(m, y));
}
#endif

// Byte k of a packed row: bit t is (row[8k + t] != 0), for the 8 floats at row + 8k.
inline uint8_t pack8(const float* v) {
#if defined(__AVX__)
  return static_cast<uint8_t>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(v), _mm256_setzero_ps(), _CMP_NEQ_UQ)));
#else
  uint8_t byte = 0;
  for (int t = 0; t < 8; ++t) byte |= static_cast<uint8_t>(v[t] != 0.0f) << t;
  return byte;
#endif
}

// Row by row in parallel (rows of n samples): row(src + r * src_len, dst + r * dst_len) for every row r.
template <class Src, class Dst, class Row>
inline void map_rows(int64_t rows, int64_t n, const Src* src, int64_t src_len, Dst* dst, int64_t dst_len, Row row) {
  at::parallel_for(0, rows, grain(n), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) row(src + r * src_len, dst + r * dst_len);
  });
}

// Fetch the `bytes` bytes at p into the cache, one 64-byte line at a time (a no-op without AVX).
inline void prefetch_row(const void* p, int64_t bytes) {
#if defined(__AVX__)
  const char* c = static_cast<const char*>(p);
  for (int64_t off = 0; off < bytes; off += 64) _mm_prefetch(c + off, _MM_HINT_T0);
#endif
}

// o[t] += g[t] * (lin + c3 * v[t]) for the 8 lanes of one chunk.
inline void accumulate8(const float* gv, const float* v, float lin, float c3, float* o) {
#pragma omp simd
  for (int t = 0; t < 8; ++t) o[t] += gv[t] * (lin + c3 * v[t]);
}

// out += g * (lin + c3 * o) for the 0/1 row o of B samples given as bits, from chunk q0 (of 8 samples)
// to the end, the last partial chunk included.
inline void accumulate_bits_from(const uint8_t* ob, const float* gn, int64_t B, float lin, float c3, float* out,
                                 int64_t q0) {
  const int64_t full = B / 8, tail = B - 8 * full;
  for (int64_t q = q0; q < full; ++q) accumulate8(gn + 8 * q, kBits.v[ob[q]], lin, c3, out + 8 * q);
  for (int64_t t = 0; t < tail; ++t) out[8 * full + t] += gn[8 * full + t] * (lin + c3 * kBits.v[ob[full]][t]);
}

// The first `full` whole chunks of a gate's backward from bits (a row ab, b row bb), lane by lane:
// lane t of s0..s3 accumulates g, g*a, g*b and g*a*b; out, if given, += g * (lin + c3 * b).
inline void gate_bits_lanes(const uint8_t* ab, const uint8_t* bb, const float* gn, int64_t full, float c3,
                            float* out, float lin, float* s0, float* s1, float* s2, float* s3) {
  for (int64_t k = 0; k < full; ++k) {
    const float* av = kBits.v[ab[k]];
    const float* bv = kBits.v[bb[k]];
    const float* gv = gn + 8 * k;
#pragma omp simd
    for (int t = 0; t < 8; ++t) {
      const float ga = gv[t] * av[t];
      s0[t] += gv[t];
      s1[t] += ga;
      s2[t] += gv[t] * bv[t];
      s3[t] += ga * bv[t];
    }
    if (out) accumulate8(gv, bv, lin, c3, out + 8 * k);
  }
}

#if defined(__AVX2__)
// The four coefficient sums of one gate over `chunks` chunks of 8 samples, with two sets of
// accumulators so that consecutive chunks do not wait on each other's adds. load(q, g, a, b) sets the
// g, a and b vectors of chunk q; out, if given, += g * (lin + c3 * b) at out + 8q. Sets r0..r3.
template <class Load>
inline void gate_sums_avx(int64_t chunks, Load load, float c3, float* out, float lin, float& r0, float& r1,
                          float& r2, float& r3) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, t0 = s0, t1 = s0, t2 = s0, t3 = s0;
  const __m256 vl = _mm256_set1_ps(lin), vc = _mm256_set1_ps(c3);
  auto chunk = [&](int64_t q, __m256& a0, __m256& a1, __m256& a2, __m256& a3) {
    __m256 g, av, bv;
    load(q, g, av, bv);
    const __m256 ga = _mm256_mul_ps(g, av);
    a0 = _mm256_add_ps(a0, g);
    a1 = _mm256_add_ps(a1, ga);
    a2 = _mm256_fmadd_ps(g, bv, a2);
    a3 = _mm256_fmadd_ps(ga, bv, a3);
    if (out) _mm256_storeu_ps(out + 8 * q, _mm256_fmadd_ps(g, _mm256_fmadd_ps(vc, bv, vl), _mm256_loadu_ps(out + 8 * q)));
  };
  int64_t q = 0;
  for (; q + 1 < chunks; q += 2) chunk(q, s0, s1, s2, s3), chunk(q + 1, t0, t1, t2, t3);
  if (q < chunks) chunk(q, s0, s1, s2, s3);
  r0 = first(hsum8(_mm256_add_ps(s0, t0))), r1 = first(hsum8(_mm256_add_ps(s1, t1)));
  r2 = first(hsum8(_mm256_add_ps(s2, t2))), r3 = first(hsum8(_mm256_add_ps(s3, t3)));
}
#endif

// The gates reading each input row, in CSR form: users[start[r] .. start[r+1]) hold 2n for "row r is
// input a of gate n" and 2n+1 for "input b". Lets the input gradient be computed row by row.
struct Consumers {
  std::vector<int64_t> start, users;
  Consumers(const int64_t* ap, const int64_t* bp, int64_t N, int64_t in_dim) : start(in_dim + 1, 0), users(2 * N) {
    for (int64_t n = 0; n < N; ++n) ++start[ap[n] + 1], ++start[bp[n] + 1];
    for (int64_t r = 0; r < in_dim; ++r) start[r + 1] += start[r];
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t n = 0; n < N; ++n) {
      users[fill[ap[n]]++] = 2 * n;
      users[fill[bp[n]]++] = 2 * n + 1;
    }
  }

  // Fill the input gradient gx [in_dim, B] row by row, rows in parallel: row r is zeroed, then
  // body(r, k, out) runs for each of its consumers k (gate users[k] >> 1; input b if users[k] & 1).
  template <class Body>
  void gather(float* gx, int64_t B, Body body) const {
    const int64_t in_dim = static_cast<int64_t>(start.size()) - 1;
    at::parallel_for(0, in_dim, grain(2 * B), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        float* out = gx + r * B;
        std::fill(out, out + B, 0.0f);
        for (int64_t k = start[r]; k < start[r + 1]; ++k) body(r, k, out);
      }
    });
  }
};

}  // namespace

torch::Tensor forward(torch::Tensor x, torch::Tensor ia, torch::Tensor ib, torch::Tensor coef) {
  check(x, ia, ib, coef);
  const int64_t N = ia.size(0), B = x.size(1);
  auto y = torch::empty({N, B}, x.options());
  const float* xp = x.data_ptr<float>();
  const int64_t* ap = ia.data_ptr<int64_t>();
  const int64_t* bp = ib.data_ptr<int64_t>();
  const float* cp = coef.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, N, grain(B), [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) {
      const float* a = xp + ap[n] * B;
      const float* b = xp + bp[n] * B;
#if defined(__AVX2__)
      if (n + 2 < hi) {  // the input rows come in random order: fetch the gate after next's ahead of time
        prefetch_row(xp + ap[n + 2] * B, 4 * B);
        prefetch_row(xp + bp[n + 2] * B, 4 * B);
      }
#endif
      const float c0 = cp[4 * n], c1 = cp[4 * n + 1], c2 = cp[4 * n + 2], c3 = cp[4 * n + 3];
      float* out = yp + n * B;
#pragma omp simd
      for (int64_t j = 0; j < B; ++j) out[j] = c0 + c1 * a[j] + (c2 + c3 * a[j]) * b[j];
    }
  });
  return y;
}

// The four coefficient sums of one gate over real-valued rows a and b (B floats each) and, if out is
// given, out += g * (lin + c3 * b). Two sets of accumulators, so consecutive chunks do not wait on adds.
inline void gate_float(const float* a, const float* b, const float* gn, int64_t B, float c3, float* out, float lin,
                       float* s) {
  float r0 = 0, r1 = 0, r2 = 0, r3 = 0;
  int64_t j = 0;
#if defined(__AVX2__)
  auto load = [&](int64_t q, __m256& gv, __m256& av, __m256& bv) {
    gv = _mm256_loadu_ps(gn + 8 * q), av = _mm256_loadu_ps(a + 8 * q), bv = _mm256_loadu_ps(b + 8 * q);
  };
  gate_sums_avx(B / 8, load, c3, out, lin, r0, r1, r2, r3);
  j = 8 * (B / 8);
#endif
  for (; j < B; ++j) {
    const float ga = gn[j] * a[j];
    r0 += gn[j], r1 += ga, r2 += gn[j] * b[j], r3 += ga * b[j];
    if (out) out[j] += gn[j] * (lin + c3 * b[j]);
  }
  s[0] = r0, s[1] = r1, s[2] = r2, s[3] = r3;
}

// Backward over real-valued x: one gather pass over the consumers of each input row (CSR): row ia[n]
// accumulates g*(c1 + c3*b) and, while g[n] is in cache, yields the four sums of dL/dcoef[n]; row ib[n]
// accumulates g*(c2 + c3*a). Gradient rows of upcoming consumers are prefetched. With need_gx false
// only the sums are computed (one pass over the gates) and gx is returned empty.
std::vector<torch::Tensor> backward(torch::Tensor x, torch::Tensor ia, torch::Tensor ib, torch::Tensor coef,
                                    torch::Tensor g, bool need_gx) {
  check(x, ia, ib, coef);
  TORCH_CHECK(g.is_contiguous() && g.scalar_type() == torch::kFloat32, "g: float32 contiguous");
  const int64_t N = ia.size(0), B = x.size(1), in_dim = x.size(0);
  TORCH_CHECK(g.dim() == 2 && g.size(0) == N && g.size(1) == B, "g: [N, B]");
  auto gcoef = torch::empty({N, 4}, coef.options());
  const float* xp = x.data_ptr<float>();
  const int64_t *ap = ia.data_ptr<int64_t>(), *bp = ib.data_ptr<int64_t>();
  const float *cp = coef.data_ptr<float>(), *gp = g.data_ptr<float>();
  float* gcp = gcoef.data_ptr<float>();
  if (!need_gx) {
    at::parallel_for(0, N, grain(B), [&](int64_t lo, int64_t hi) {
      for (int64_t n = lo; n < hi; ++n)
        gate_float(xp + ap[n] * B, xp + bp[n] * B, gp + n * B, B, cp[4 * n + 3], nullptr, 0.0f, gcp + 4 * n);
    });
    return {torch::empty({0}, coef.options()), gcoef};
  }
  auto gx = torch::empty_like(x);
  float* gxp = gx.data_ptr<float>();
  const Consumers cons(ap, bp, N, in_dim);
  const std::vector<int64_t>& users = cons.users;
  const int64_t n_users = static_cast<int64_t>(users.size()), prefetch = 2;
  cons.gather(gxp, B, [&](int64_t r, int64_t k, float* out) {
    const int64_t n = users[k] >> 1;
#if defined(__AVX2__)
    if (k + prefetch < n_users) {
      const int64_t m = users[k + prefetch] >> 1;
      prefetch_row(gp + m * B, 4 * B);
      prefetch_row(xp + ((users[k + prefetch] & 1) ? ap[m] : bp[m]) * B, 4 * B);
    }
#endif
    if (!(users[k] & 1)) {  // input a: the other input is b, and this gate's sums are ours
      gate_float(xp + r * B, xp + bp[n] * B, gp + n * B, B, cp[4 * n + 3], out, cp[4 * n + 1], gcp + 4 * n);
      return;
    }
    const float* other = xp + ap[n] * B;  // input b: the other input is a
    const float lin = cp[4 * n + 2], c3 = cp[4 * n + 3];
    const float* gn = gp + n * B;
#pragma omp simd
    for (int64_t j = 0; j < B; ++j) out[j] += gn[j] * (lin + c3 * other[j]);
  });
  return {gx, gcoef};
}

// Bit packing of 0/1 activations: [rows, n] float -> [rows, ceil(n/8)] uint8 (bit j%8 of byte j/8).
torch::Tensor pack_bits(torch::Tensor x) {
  TORCH_CHECK(x.dim() == 2 && x.is_contiguous() && x.scalar_type() == torch::kFloat32, "x: [rows, n] float32");
  const int64_t rows = x.size(0), n = x.size(1), nb = (n + 7) / 8, full = n / 8;
  auto p = torch::empty({rows, nb}, x.options().dtype(torch::kUInt8));
  map_rows(rows, n, x.data_ptr<float>(), n, p.data_ptr<uint8_t>(), nb, [&](const float* row, uint8_t* out) {
    for (int64_t k = 0; k < full; ++k) out[k] = pack8(row + 8 * k);
    if (full < nb) {  // the last, partial byte; its unused high bits are 0
      uint8_t byte = 0;
      for (int64_t t = 0; t < n - 8 * full; ++t) byte |= static_cast<uint8_t>(row[8 * full + t] != 0.0f) << t;
      out[full] = byte;
    }
  });
  return p;
}

torch::Tensor unpack_bits(torch::Tensor p, int64_t n) {
  TORCH_CHECK(p.dim() == 2 && p.is_contiguous() && p.scalar_type() == torch::kUInt8, "p: [rows, nb] uint8");
  const int64_t rows = p.size(0), nb = p.size(1), full = n / 8;
  TORCH_CHECK(nb == (n + 7) / 8, "unpack_bits: ", nb, " bytes per row do not hold ", n, " bits");
  auto x = torch::empty({rows, n}, p.options().dtype(torch::kFloat32));
  map_rows(rows, n, p.data_ptr<uint8_t>(), nb, x.data_ptr<float>(), n, [&](const uint8_t* in, float* out) {
    for (int64_t k = 0; k < full; ++k) std::memcpy(out + 8 * k, kBits.v[in[k]], 8 * sizeof(float));
    for (int64_t j = 8 * full; j < n; ++j) out[j] = kBits.v[in[full]][j - 8 * full];
  });
  return x;
}

// Backward of a layer whose input was saved as packed bits (gumbel mode: every activation is 0 or 1),
// read straight from the bits; nothing is unpacked. p: [in_dim, ceil(B/8)] uint8, g: [N, B] float32.
// One pass over the consumers of each input row (CSR, as in backward): row ia[n] accumulates
// g*(c1 + c3*b) and, while g[n] is in cache, also yields the four sums of dL/dcoef[n]; row ib[n]
// accumulates g*(c2 + c3*a). With need_gx false (the network's input) only the sums are computed
// and gx is returned empty.
std::vector<torch::Tensor> backward_bits(torch::Tensor p, int64_t B, torch::Tensor ia, torch::Tensor ib,
                                         torch::Tensor coef, torch::Tensor g, bool need_gx) {
  TORCH_CHECK(p.dim() == 2 && p.is_contiguous() && p.scalar_type() == torch::kUInt8, "p: [in, nb] uint8");
  TORCH_CHECK(p.size(1) == (B + 7) / 8, "backward_bits: ", p.size(1), " bytes per row do not hold ", B, " bits");
  TORCH_CHECK(ia.scalar_type() == torch::kInt64 && ib.scalar_type() == torch::kInt64, "ia/ib: int64");
  TORCH_CHECK(coef.dim() == 2 && coef.size(1) == 4 && coef.is_contiguous() && coef.scalar_type() == torch::kFloat32,
              "coef: [N, 4] float32 contiguous");
  TORCH_CHECK(g.dim() == 2 && g.size(0) == ia.size(0) && g.size(1) == B && g.is_contiguous() &&
              g.scalar_type() == torch::kFloat32, "g: [N, B] float32 contiguous");
  const int64_t N = ia.size(0), in_dim = p.size(0), nb = p.size(1), full = B / 8, tail = B - 8 * full;
  auto gcoef = torch::empty({N, 4}, coef.options());
  const uint8_t* pp = p.data_ptr<uint8_t>();
  const int64_t *ap = ia.data_ptr<int64_t>(), *bp = ib.data_ptr<int64_t>();
  const float *cp = coef.data_ptr<float>(), *gp = g.data_ptr<float>();
  float* gcp = gcoef.data_ptr<float>();

  // The four sums of gate n (a = row ia[n], b = row ib[n]); out, if given, += g * (lin + c3 * b).
  auto gate = [&](int64_t n, float* out, float lin) {
    const uint8_t* ab = pp + ap[n] * nb;
    const uint8_t* bb = pp + bp[n] * nb;
    const float* gn = gp + n * B;
    const float c3 = cp[4 * n + 3];
    float s0[8] = {0}, s1[8] = {0}, s2[8] = {0}, s3[8] = {0};
    gate_bits_lanes(ab, bb, gn, full, c3, out, lin, s0, s1, s2, s3);
    for (int64_t t = 0; t < tail; ++t) {
      const float gt = gn[8 * full + t], at = kBits.v[ab[full]][t], bt = kBits.v[bb[full]][t];
      s0[t] += gt, s1[t] += gt * at, s2[t] += gt * bt, s3[t] += gt * at * bt;
      if (out) out[8 * full + t] += gt * (lin + c3 * bt);
    }
    float r0 = 0, r1 = 0, r2 = 0, r3 = 0;
    for (int t = 0; t < 8; ++t) r0 += s0[t], r1 += s1[t], r2 += s2[t], r3 += s3[t];
    gcp[4 * n] = r0, gcp[4 * n + 1] = r1, gcp[4 * n + 2] = r2, gcp[4 * n + 3] = r3;
  };

  if (!need_gx) {
    at::parallel_for(0, N, grain(B), [&](int64_t lo, int64_t hi) {
      for (int64_t n = lo; n < hi; ++n) gate(n, nullptr, 0.0f);
    });
    return {torch::empty({0}, coef.options()), gcoef};
  }

  auto gx = torch::empty({in_dim, B}, coef.options());
  float* gxp = gx.data_ptr<float>();
  const Consumers cons(ap, bp, N, in_dim);
  const std::vector<int64_t>& users = cons.users;
  cons.gather(gxp, B, [&](int64_t, int64_t k, float* out) {
    const int64_t n = users[k] >> 1;
    if (!(users[k] & 1))  // input a: the other input is b, and this gate's sums are ours
      gate(n, out, cp[4 * n + 1]);
    else  // input b: the other input is a
      accumulate_bits_from(pp + ap[n] * nb, gp + n * B, B, cp[4 * n + 2], cp[4 * n + 3], out, 0);
  });
  return {gx, gcoef};
}


// ==============================================================================================
// Gate coefficients, Gumbel noise and the whole-network packed pass (gumbel mode).
// ==============================================================================================

#if defined(__AVX2__)
// SLEEF's vector log/exp (1 ulp), which libtorch_cpu exports for its own vectorised kernels.
extern "C" __m256 Sleef_logf8_u10(__m256);
extern "C" __m256 Sleef_expf8_u10(__m256);
#endif

namespace {

// out[t] = exp(in[t]) if Exp, else log(in[t]), for 8 lanes: SLEEF's vector function with AVX2, else std::.
template <bool Exp>
inline void logexp8(const float* in, float* out) {
#if defined(__AVX2__)
  const __m256 v = _mm256_loadu_ps(in);
  _mm256_storeu_ps(out, Exp ? Sleef_expf8_u10(v) : Sleef_logf8_u10(v));
#else
  for (int t = 0; t < 8; ++t) out[t] = Exp ? std::exp(in[t]) : std::log(in[t]);
#endif
}
inline void log8(const float* in, float* out) { logexp8<false>(in, out); }
inline void exp8(const float* in, float* out) { logexp8<true>(in, out); }

inline uint32_t fmix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x85EBCA6Bu;
  x ^= x >> 13;
  x *= 0xC2B2AE35u;
  x ^= x >> 16;
  return x;
}

constexpr int kOps = 16;


void check_rows16(const torch::Tensor& t, const char* what) {
  TORCH_CHECK(t.dim() == 2 && t.size(1) == kOps && t.is_contiguous() && t.scalar_type() == torch::kFloat32,
              what, ": [N, 16] float32 contiguous");
}

void check_coeffs(const torch::Tensor& c) {
  TORCH_CHECK(c.dim() == 2 && c.size(0) == kOps && c.size(1) == 4 && c.is_contiguous() &&
              c.scalar_type() == torch::kFloat32, "coeffs: [16, 4] float32 contiguous");
}

}  // namespace

// Standard Gumbel samples [rows, 16] from a counter-based hash (see functional.hashed_gumbel, the
// definition): element i gets h = fmix32(fmix32(i ^ k1) + k2), u = ((h >> 9) + 0.5) * 2^-23 (strictly
// inside (0, 1), exact in float32) and g = -log(-log(u)).
torch::Tensor gumbel_noise(int64_t rows, int64_t k1, int64_t k2, bool fast_log) {
  TORCH_CHECK(rows >= 0 && rows * kOps < (int64_t(1) << 32), "gumbel_noise: rows out of range");
  auto out = torch::empty({rows, kOps}, torch::dtype(torch::kFloat32));
  float* op = out.data_ptr<float>();
  const uint32_t a = static_cast<uint32_t>(k1), b = static_cast<uint32_t>(k2);
  const int64_t chunks = rows * kOps / 8;  // 16 per row: always whole chunks of 8
  at::parallel_for(0, chunks, 2048, [&](int64_t lo, int64_t hi) {
#if defined(__AVX2__)
    const __m256i va = _mm256_set1_epi32(static_cast<int>(a)), vb = _mm256_set1_epi32(static_cast<int>(b));
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 sign = _mm256_set1_ps(-0.0f), half = _mm256_set1_ps(0.5f), scale = _mm256_set1_ps(1.0f / 8388608.0f);
    auto log_u = [fast_log](__m256 v) { return fast_log ? log8_fast(v) : Sleef_logf8_u10(v); };
    for (int64_t c = lo; c < hi; ++c) {
      const __m256i i = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(8 * c)), lane);
      const __m256i h = fmix32v(_mm256_add_epi32(fmix32v(_mm256_xor_si256(i, va)), vb));
      const __m256 u = _mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(h, 9)), half), scale);
      const __m256 e = _mm256_xor_ps(log_u(u), sign);  // -log(u) > 0
      _mm256_storeu_ps(op + 8 * c, _mm256_xor_ps(log_u(e), sign));
    }
#else
    alignas(32) float u[8], l[8];
    for (int64_t c = lo; c < hi; ++c) {
      const uint32_t base = static_cast<uint32_t>(8 * c);
      for (int t = 0; t < 8; ++t) {
        const uint32_t h = fmix32(fmix32((base + t) ^ a) + b);
        u[t] = (static_cast<float>(h >> 9) + 0.5f) * (1.0f / 8388608.0f);
      }
      log8(u, l);
      for (int t = 0; t < 8; ++t) l[t] = -l[t];
      log8(l, u);
      for (int t = 0; t < 8; ++t) op[8 * c + t] = -u[t];
    }
#endif
  });
  return out;
}

// Straight-through Gumbel gate as coefficients, forward: z = logits + noise; returns
// (coeffs[argmax z] [N, 4], softmax(z / temperature) [N, 16]) (the latter is saved for backward).
std::vector<torch::Tensor> gumbel_coef(torch::Tensor logits, torch::Tensor noise, double temperature,
                                       torch::Tensor coeffs) {
  check_rows16(logits, "logits");
  check_rows16(noise, "noise");
  check_coeffs(coeffs);
  TORCH_CHECK(noise.size(0) == logits.size(0), "noise: shape differs from logits");
  const int64_t N = logits.size(0);
  auto coef = torch::empty({N, 4}, logits.options());
  auto soft = torch::empty({N, kOps}, logits.options());
  const float* lp = logits.data_ptr<float>();
  const float* np = noise.data_ptr<float>();
  const float* cc = coeffs.data_ptr<float>();
  float* cp = coef.data_ptr<float>();
  float* sp = soft.data_ptr<float>();
  const float T = static_cast<float>(temperature);
  at::parallel_for(0, N, 1024, [&](int64_t lo, int64_t hi) {
#if defined(__AVX2__)
    const __m256 vT = _mm256_set1_ps(T);
    for (int64_t n = lo; n < hi; ++n) {
      const __m256 z0 = _mm256_add_ps(_mm256_loadu_ps(lp + kOps * n), _mm256_loadu_ps(np + kOps * n));
      const __m256 z1 = _mm256_add_ps(_mm256_loadu_ps(lp + kOps * n + 8), _mm256_loadu_ps(np + kOps * n + 8));
      const __m256 zm = hmax8(_mm256_max_ps(z0, z1));
      const unsigned eq = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(z0, zm, _CMP_EQ_OQ))) |
                          static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(z1, zm, _CMP_EQ_OQ))) << 8;
      const int best = eq ? __builtin_ctz(eq) : 0;  // the first maximum, as torch.argmax
      const __m256 x0 = _mm256_div_ps(z0, vT), x1 = _mm256_div_ps(z1, vT);
      const __m256 xm = hmax8(_mm256_max_ps(x0, x1));
      const __m256 e0 = Sleef_expf8_u10(_mm256_sub_ps(x0, xm)), e1 = Sleef_expf8_u10(_mm256_sub_ps(x1, xm));
      const __m256 sum = hsum8(_mm256_add_ps(e0, e1));
      _mm256_storeu_ps(sp + kOps * n, _mm256_div_ps(e0, sum));
      _mm256_storeu_ps(sp + kOps * n + 8, _mm256_div_ps(e1, sum));
      for (int c = 0; c < 4; ++c) cp[4 * n + c] = cc[4 * best + c];
    }
#else
    alignas(32) float z[kOps], e[kOps];
    for (int64_t n = lo; n < hi; ++n) {
      int best = 0;
      float zmax = -INFINITY, xmax = -INFINITY;
      for (int k = 0; k < kOps; ++k) {
        const float zk = lp[kOps * n + k] + np[kOps * n + k];
        if (zk > zmax || k == 0) zmax = zk, best = k;  // first maximum, as torch.argmax
        z[k] = zk / T;
        xmax = std::max(xmax, z[k]);
      }
      for (int k = 0; k < kOps; ++k) z[k] -= xmax;
      exp8(z, e), exp8(z + 8, e + 8);
      float sum = 0;
      for (int k = 0; k < kOps; ++k) sum += e[k];
      for (int k = 0; k < kOps; ++k) sp[kOps * n + k] = e[k] / sum;
      for (int c = 0; c < 4; ++c) cp[4 * n + c] = cc[4 * best + c];
    }
#endif
  });
  return {coef, soft};
}

// Softmax relaxation as coefficients: (softmax(logits) @ coeffs [N, 4], softmax(logits) [N, 16]).
std::vector<torch::Tensor> softmax_coef(torch::Tensor logits, torch::Tensor coeffs) {
  check_rows16(logits, "logits");
  check_coeffs(coeffs);
  const int64_t N = logits.size(0);
  auto coef = torch::empty({N, 4}, logits.options());
  auto soft = torch::empty({N, kOps}, logits.options());
  const float* lp = logits.data_ptr<float>();
  const float* cc = coeffs.data_ptr<float>();
  float* cp = coef.data_ptr<float>();
  float* sp = soft.data_ptr<float>();
  at::parallel_for(0, N, 1024, [&](int64_t lo, int64_t hi) {
#if defined(__AVX2__)
    alignas(32) float col[4][kOps];  // the coefficient table by column
    for (int k = 0; k < kOps; ++k)
      for (int c = 0; c < 4; ++c) col[c][k] = cc[4 * k + c];
    for (int64_t n = lo; n < hi; ++n) {
      const __m256 x0 = _mm256_loadu_ps(lp + kOps * n), x1 = _mm256_loadu_ps(lp + kOps * n + 8);
      const __m256 xm = hmax8(_mm256_max_ps(x0, x1));
      const __m256 e0 = Sleef_expf8_u10(_mm256_sub_ps(x0, xm)), e1 = Sleef_expf8_u10(_mm256_sub_ps(x1, xm));
      const __m256 sum = hsum8(_mm256_add_ps(e0, e1));
      const __m256 s0 = _mm256_div_ps(e0, sum), s1 = _mm256_div_ps(e1, sum);
      _mm256_storeu_ps(sp + kOps * n, s0);
      _mm256_storeu_ps(sp + kOps * n + 8, s1);
      for (int c = 0; c < 4; ++c)
        cp[4 * n + c] = first(hsum8(_mm256_fmadd_ps(s0, _mm256_load_ps(col[c]), _mm256_mul_ps(s1, _mm256_load_ps(col[c] + 8)))));
    }
#else
    alignas(32) float z[kOps], e[kOps];
    for (int64_t n = lo; n < hi; ++n) {
      float xmax = -INFINITY;
      for (int k = 0; k < kOps; ++k) xmax = std::max(xmax, lp[kOps * n + k]);
      for (int k = 0; k < kOps; ++k) z[k] = lp[kOps * n + k] - xmax;
      exp8(z, e), exp8(z + 8, e + 8);
      float sum = 0;
      for (int k = 0; k < kOps; ++k) sum += e[k];
      float c4[4] = {0, 0, 0, 0};
      for (int k = 0; k < kOps; ++k) {
        const float s = e[k] / sum;
        sp[kOps * n + k] = s;
        for (int c = 0; c < 4; ++c) c4[c] += s * cc[4 * k + c];
      }
      for (int c = 0; c < 4; ++c) cp[4 * n + c] = c4[c];
    }
#endif
  });
  return {coef, soft};
}

// Backward of both coefficient forms: gw = grad_coef @ coeffs.T [N, 16];
// grad_logits = soft * (gw - sum(soft * gw)) / temperature.
torch::Tensor coef_backward(torch::Tensor grad_coef, torch::Tensor soft, double temperature, torch::Tensor coeffs) {
  check_rows16(soft, "soft");
  check_coeffs(coeffs);
  TORCH_CHECK(grad_coef.dim() == 2 && grad_coef.size(0) == soft.size(0) && grad_coef.size(1) == 4 &&
              grad_coef.is_contiguous() && grad_coef.scalar_type() == torch::kFloat32, "grad_coef: [N, 4] float32");
  const int64_t N = soft.size(0);
  auto out = torch::empty({N, kOps}, soft.options());
  const float* gp = grad_coef.data_ptr<float>();
  const float* sp = soft.data_ptr<float>();
  const float* cc = coeffs.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const float T = static_cast<float>(temperature);
  at::parallel_for(0, N, 1024, [&](int64_t lo, int64_t hi) {
#if defined(__AVX2__)
    alignas(32) float col[4][kOps];  // the coefficient table by column
    for (int k = 0; k < kOps; ++k)
      for (int c = 0; c < 4; ++c) col[c][k] = cc[4 * k + c];
    const __m256 vT = _mm256_set1_ps(T);
    for (int64_t n = lo; n < hi; ++n) {
      __m256 w0 = _mm256_setzero_ps(), w1 = _mm256_setzero_ps();
      for (int c = 0; c < 4; ++c) {
        const __m256 g = _mm256_set1_ps(gp[4 * n + c]);
        w0 = _mm256_fmadd_ps(g, _mm256_load_ps(col[c]), w0);
        w1 = _mm256_fmadd_ps(g, _mm256_load_ps(col[c] + 8), w1);
      }
      const __m256 s0 = _mm256_loadu_ps(sp + kOps * n), s1 = _mm256_loadu_ps(sp + kOps * n + 8);
      const __m256 dot = hsum8(_mm256_fmadd_ps(s0, w0, _mm256_mul_ps(s1, w1)));
      _mm256_storeu_ps(op + kOps * n, _mm256_div_ps(_mm256_mul_ps(s0, _mm256_sub_ps(w0, dot)), vT));
      _mm256_storeu_ps(op + kOps * n + 8, _mm256_div_ps(_mm256_mul_ps(s1, _mm256_sub_ps(w1, dot)), vT));
    }
#else
    float gw[kOps];
    for (int64_t n = lo; n < hi; ++n) {
      const float g0 = gp[4 * n], g1 = gp[4 * n + 1], g2 = gp[4 * n + 2], g3 = gp[4 * n + 3];
      float dot = 0;
      for (int k = 0; k < kOps; ++k) {
        gw[k] = g0 * cc[4 * k] + g1 * cc[4 * k + 1] + g2 * cc[4 * k + 2] + g3 * cc[4 * k + 3];
        dot += sp[kOps * n + k] * gw[k];
      }
      for (int k = 0; k < kOps; ++k) op[kOps * n + k] = sp[kOps * n + k] * (gw[k] - dot) / T;
    }
#endif
  });
  return out;
}

namespace {

// Packed activations of the whole-network pass: [rows, words] uint64 (stored as int64), bit j % 64 of
// word j / 64 is sample j; bits at and above B are 0.
inline uint64_t tail_mask(int64_t B) { return (B % 64) ? ((uint64_t(1) << (B % 64)) - 1) : ~uint64_t(0); }

// The truth table of coefficients (c0..c3) as four all-ones/all-zeros masks for (a, b) = 00, 01, 10, 11.
struct GateMasks {
  uint64_t m00, m01, m10, m11;
  explicit GateMasks(const float* c) {
    auto mask = [](float v) { return v != 0.0f ? ~uint64_t(0) : uint64_t(0); };
    m00 = mask(c[0]), m01 = mask(c[0] + c[2]), m10 = mask(c[0] + c[1]), m11 = mask(c[0] + c[1] + c[2] + c[3]);
  }
  uint64_t operator()(uint64_t a, uint64_t b) const {
    return (~a & ~b & m00) | (~a & b & m01) | (a & ~b & m10) | (a & b & m11);
  }
};

// The four coefficient sums of one gate from bits (a row, b row, stride in bytes), g row of B floats;
// out, if given, += g * (lin + c3 * b). Returns the sums in s[4].
inline void gate_bits(const uint8_t* ab, const uint8_t* bb, const float* gn, int64_t B, float c3, float* out,
                      float lin, float* s) {
  const int64_t full = B / 8, tail = B - 8 * full;
  float r0 = 0, r1 = 0, r2 = 0, r3 = 0;
#if defined(__AVX2__)
  auto load = [&](int64_t q, __m256& g, __m256& av, __m256& bv) {
    g = _mm256_loadu_ps(gn + 8 * q), av = _mm256_load_ps(kBits.v[ab[q]]), bv = _mm256_load_ps(kBits.v[bb[q]]);
  };
  gate_sums_avx(full, load, c3, out, lin, r0, r1, r2, r3);
#else
  float s0[8] = {0}, s1[8] = {0}, s2[8] = {0}, s3[8] = {0};
  gate_bits_lanes(ab, bb, gn, full, c3, out, lin, s0, s1, s2, s3);
  for (int t = 0; t < 8; ++t) r0 += s0[t], r1 += s1[t], r2 += s2[t], r3 += s3[t];
#endif
  for (int64_t t = 0; t < tail; ++t) {
    const float gt = gn[8 * full + t], at = kBits.v[ab[full]][t], bt = kBits.v[bb[full]][t];
    r0 += gt, r1 += gt * at, r2 += gt * bt, r3 += gt * at * bt;
    if (out) out[8 * full + t] += gt * (lin + c3 * bt);
  }
  s[0] = r0, s[1] = r1, s[2] = r2, s[3] = r3;
}

// out += g * (lin + c3 * o) for the 0/1 row o given as bits.
inline void accumulate_bits(const uint8_t* ob, const float* gn, int64_t B, float lin, float c3, float* out) {
  int64_t q = 0;
#if defined(__AVX2__)
  const __m256 vl = _mm256_set1_ps(lin), vc = _mm256_set1_ps(c3);
  for (; q < B / 8; ++q) {
    const __m256 ov = _mm256_load_ps(kBits.v[ob[q]]);
    _mm256_storeu_ps(out + 8 * q, _mm256_fmadd_ps(_mm256_loadu_ps(gn + 8 * q), _mm256_fmadd_ps(vc, ov, vl),
                                                  _mm256_loadu_ps(out + 8 * q)));
  }
#endif
  accumulate_bits_from(ob, gn, B, lin, c3, out, q);
}

void check_layers(const std::vector<torch::Tensor>& ia, const std::vector<torch::Tensor>& ib,
                  const std::vector<torch::Tensor>& coef) {
  TORCH_CHECK(!ia.empty() && ia.size() == ib.size() && ia.size() == coef.size(), "ia/ib/coef: one per layer");
  for (size_t l = 0; l < ia.size(); ++l) {
    TORCH_CHECK(ia[l].scalar_type() == torch::kInt64 && ib[l].scalar_type() == torch::kInt64 &&
                ia[l].is_contiguous() && ib[l].is_contiguous() && ia[l].size(0) == ib[l].size(0),
                "ia/ib: int64 contiguous, equal lengths");
    TORCH_CHECK(coef[l].dim() == 2 && coef[l].size(0) == ia[l].size(0) && coef[l].size(1) == 4 &&
                coef[l].is_contiguous() && coef[l].scalar_type() == torch::kFloat32, "coef: [N, 4] float32");
  }
}

}  // namespace

// The whole network's forward in gumbel mode, on packed bits: x [B, in] of 0/1 (batch-major) is packed
// once, every layer maps bits to bits with its sampled gate (truth table from its exact coefficients),
// and the last layer's bits are counted per class group. Returns [scores [B, classes] = count / tau,
// then the packed input of every layer ([rows, ceil(B/64)] int64), which backward needs].
std::vector<torch::Tensor> net_forward_bits(torch::Tensor x, std::vector<torch::Tensor> ia,
                                            std::vector<torch::Tensor> ib, std::vector<torch::Tensor> coef,
                                            int64_t classes, double tau) {
  TORCH_CHECK(x.dim() == 2 && x.is_contiguous() && x.scalar_type() == torch::kFloat32, "x: [B, in] float32");
  check_layers(ia, ib, coef);
  const int64_t B = x.size(0), in_dim = x.size(1), W = (B + 63) / 64, L = ia.size();
  const int64_t n_last = ia[L - 1].size(0);
  TORCH_CHECK(classes > 0 && n_last % classes == 0, "net_forward_bits: last layer width not a multiple of classes");
  std::vector<torch::Tensor> out;
  out.push_back(torch::empty({B, classes}, x.options()));
  auto opt = x.options().dtype(torch::kInt64);

  // Pack the input: one word per (feature, 64 samples).
  auto bits0 = torch::zeros({in_dim, W}, opt);
  {
    const float* xp = x.data_ptr<float>();
    uint64_t* bp = reinterpret_cast<uint64_t*>(bits0.data_ptr<int64_t>());
    at::parallel_for(0, W, 1, [&](int64_t lo, int64_t hi) {
      std::vector<uint64_t> acc(in_dim);
      for (int64_t w = lo; w < hi; ++w) {
        std::fill(acc.begin(), acc.end(), 0);
        for (int64_t j = 64 * w; j < std::min(B, 64 * w + 64); ++j) {
          const float* row = xp + j * in_dim;
          const int s = static_cast<int>(j & 63);
          for (int64_t i = 0; i < in_dim; ++i) acc[i] |= static_cast<uint64_t>(row[i] != 0.0f) << s;
        }
        for (int64_t i = 0; i < in_dim; ++i) bp[i * W + w] = acc[i];
      }
    });
  }
  out.push_back(bits0);

  const uint64_t last = tail_mask(B);
  torch::Tensor cur = bits0;
  for (int64_t l = 0; l < L; ++l) {
    const int64_t N = ia[l].size(0), rows = cur.size(0);
    const int64_t* ap = ia[l].data_ptr<int64_t>();
    const int64_t* bpn = ib[l].data_ptr<int64_t>();
    const float* cp = coef[l].data_ptr<float>();
    for (int64_t n = 0; n < N; ++n)
      TORCH_CHECK(ap[n] >= 0 && ap[n] < rows && bpn[n] >= 0 && bpn[n] < rows, "ia/ib: index out of range");
    auto nxt = torch::empty({N, W}, opt);
    const uint64_t* in = reinterpret_cast<const uint64_t*>(cur.data_ptr<int64_t>());
    uint64_t* o = reinterpret_cast<uint64_t*>(nxt.data_ptr<int64_t>());
    at::parallel_for(0, N, 4096, [&](int64_t lo, int64_t hi) {
      for (int64_t n = lo; n < hi; ++n) {
        const GateMasks gm(cp + 4 * n);
        const uint64_t* a = in + ap[n] * W;
        const uint64_t* b = in + bpn[n] * W;
        uint64_t* y = o + n * W;
        for (int64_t w = 0; w < W; ++w) y[w] = gm(a[w], b[w]);
        if (W) y[W - 1] &= last;
      }
    });
    if (l + 1 < L) out.push_back(nxt);
    cur = nxt;
  }

  // Class scores: popcount of each class's group per sample, divided by tau.
  const int64_t G = n_last / classes;
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(cur.data_ptr<int64_t>());
  float* sp = out[0].data_ptr<float>();
  const int64_t stride = 8 * W, nb = (B + 7) / 8;
  const float ftau = static_cast<float>(tau);
  at::parallel_for(0, classes, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> cnt(8 * nb);
    for (int64_t c = lo; c < hi; ++c) {
      std::fill(cnt.begin(), cnt.end(), 0.0f);
      for (int64_t n = c * G; n < (c + 1) * G; ++n) {
        const uint8_t* r = bytes + n * stride;
        for (int64_t k = 0; k < nb; ++k) {
          const float* v = kBits.v[r[k]];
          float* d = cnt.data() + 8 * k;
#pragma omp simd
          for (int t = 0; t < 8; ++t) d[t] += v[t];
        }
      }
      for (int64_t j = 0; j < B; ++j) sp[j * classes + c] = cnt[j] / ftau;
    }
  });
  return out;
}

// Backward of net_forward_bits: bits[l] is layer l's packed input, gs [classes, B] = dL/dscores^T / tau
// (the gradient of every gate output of a class group). Returns dL/dcoef [N_l, 4] for every layer;
// the network's input gets no gradient. Gradients between layers live in two reused float buffers.
std::vector<torch::Tensor> net_backward_bits(std::vector<torch::Tensor> bits, std::vector<torch::Tensor> ia,
                                             std::vector<torch::Tensor> ib, std::vector<torch::Tensor> coef,
                                             torch::Tensor gs, int64_t B, int64_t prefetch) {
  check_layers(ia, ib, coef);
  const int64_t L = ia.size();
  TORCH_CHECK(static_cast<int64_t>(bits.size()) == L, "bits: one per layer");
  TORCH_CHECK(gs.dim() == 2 && gs.size(1) == B && gs.is_contiguous() && gs.scalar_type() == torch::kFloat32,
              "gs: [classes, B] float32");
  const int64_t classes = gs.size(0), W = (B + 63) / 64, G = ia[L - 1].size(0) / classes;
  std::vector<torch::Tensor> gcoef(L);
  int64_t max_rows = 0;
  for (int64_t l = 1; l < L; ++l) max_rows = std::max(max_rows, bits[l].size(0));
  torch::Tensor buf[2];
  for (auto& t : buf) t = torch::empty({max_rows * B}, gs.options());
  const float* g_in = nullptr;  // dL/d(output of layer l), [N_l, B]; null for the last layer (use gs)
  for (int64_t l = L - 1; l >= 0; --l) {
    const int64_t N = ia[l].size(0), in_dim = bits[l].size(0);
    TORCH_CHECK(bits[l].dim() == 2 && bits[l].size(1) == W && bits[l].scalar_type() == torch::kInt64,
                "bits: [rows, ceil(B/64)] int64");
    gcoef[l] = torch::empty({N, 4}, gs.options());
    const uint8_t* pp = reinterpret_cast<const uint8_t*>(bits[l].data_ptr<int64_t>());
    const int64_t stride = 8 * W;
    const int64_t* ap = ia[l].data_ptr<int64_t>();
    const int64_t* bp = ib[l].data_ptr<int64_t>();
    const float* cp = coef[l].data_ptr<float>();
    float* gcp = gcoef[l].data_ptr<float>();
    const float* gsp = gs.data_ptr<float>();
    const float* gl = g_in;
    auto grow = [&](int64_t n) { return gl ? gl + n * B : gsp + (n / G) * B; };
    if (l == 0) {
      at::parallel_for(0, N, grain(B), [&](int64_t lo, int64_t hi) {
        for (int64_t n = lo; n < hi; ++n)
          gate_bits(pp + ap[n] * stride, pp + bp[n] * stride, grow(n), B, cp[4 * n + 3], nullptr, 0.0f, gcp + 4 * n);
      });
      break;
    }
    float* gx = buf[l & 1].data_ptr<float>();
    const Consumers cons(ap, bp, N, in_dim);
    const std::vector<int64_t>& users = cons.users;
    const int64_t n_users = static_cast<int64_t>(users.size());
    cons.gather(gx, B, [&](int64_t, int64_t k, float* out) {
      const int64_t n = users[k] >> 1;
#if defined(__AVX2__)
      // The consumers' gradient rows come in random order: fetch the one `prefetch` ahead in time.
      if (prefetch && k + prefetch < n_users) {
        const int64_t m = users[k + prefetch] >> 1;
        prefetch_row(grow(m), 4 * B);
        _mm_prefetch(reinterpret_cast<const char*>(pp + ap[m] * stride), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(pp + bp[m] * stride), _MM_HINT_T0);
      }
#endif
      if (!(users[k] & 1))  // input a: the other input is b, and this gate's sums are ours
        gate_bits(pp + ap[n] * stride, pp + bp[n] * stride, grow(n), B, cp[4 * n + 3], out, cp[4 * n + 1],
                  gcp + 4 * n);
      else
        accumulate_bits(pp + ap[n] * stride, grow(n), B, cp[4 * n + 2], cp[4 * n + 3], out);
    });
    g_in = gx;
  }
  return gcoef;
}

// How many threads one at::parallel_for over `n` single-item tasks really ran on (a build check: without
// OpenMP at compile time, at::parallel_for runs serially whatever torch.set_num_threads says).
int64_t parallel_threads(int64_t n) {
  std::atomic<uint64_t> seen{0};
  at::parallel_for(0, n, 1, [&](int64_t, int64_t) { seen |= uint64_t{1} << (at::get_thread_num() & 63); });
  return __builtin_popcountll(seen.load());
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("parallel_threads", &parallel_threads, "threads used by one at::parallel_for (build check)");
  m.def("forward", &forward, "logic layer forward");
  m.def("backward", &backward, "logic layer backward: (grad_x, grad_coef)");
  m.def("pack_bits", &pack_bits, "pack 0/1 float rows into bytes");
  m.def("unpack_bits", &unpack_bits, "unpack bytes into 0/1 float rows");
  m.def("backward_bits", &backward_bits, "logic layer backward from bit-packed 0/1 input: (grad_x, grad_coef)");
  m.def("gumbel_noise", &gumbel_noise, "counter-based standard Gumbel samples [rows, 16]");
  m.def("gumbel_coef", &gumbel_coef, "straight-through Gumbel gate coefficients: (coef, soft)");
  m.def("softmax_coef", &softmax_coef, "softmax gate coefficients: (coef, soft)");
  m.def("coef_backward", &coef_backward, "gradient of the logits from the coefficient gradient");
  m.def("net_forward_bits", &net_forward_bits, "whole-network gumbel forward on packed bits: [scores, bits...]");
  m.def("net_backward_bits", &net_backward_bits, "whole-network gumbel backward: dL/dcoef per layer");
}
