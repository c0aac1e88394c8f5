// Fused CPU kernels for the logic layer (see train/functional.py for the math).
// Layout: neuron-major, x[in_dim][B], y[N][B], all float32 and contiguous.
// Threads come from PyTorch's own pool (at::parallel_for), so torch.set_num_threads governs them and
// no second OpenMP runtime competes with PyTorch's.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
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
      const float c0 = cp[4 * n], c1 = cp[4 * n + 1], c2 = cp[4 * n + 2], c3 = cp[4 * n + 3];
      float* out = yp + n * B;
#pragma omp simd
      for (int64_t j = 0; j < B; ++j) out[j] = c0 + c1 * a[j] + (c2 + c3 * a[j]) * b[j];
    }
  });
  return y;
}

std::vector<torch::Tensor> backward(torch::Tensor x, torch::Tensor ia, torch::Tensor ib, torch::Tensor coef,
                                    torch::Tensor g) {
  check(x, ia, ib, coef);
  TORCH_CHECK(g.is_contiguous() && g.scalar_type() == torch::kFloat32, "g: float32 contiguous");
  const int64_t N = ia.size(0), B = x.size(1), in_dim = x.size(0);
  auto gcoef = torch::empty({N, 4}, coef.options());
  auto gx = torch::zeros_like(x);
  const float* xp = x.data_ptr<float>();
  const int64_t* ap = ia.data_ptr<int64_t>();
  const int64_t* bp = ib.data_ptr<int64_t>();
  const float* cp = coef.data_ptr<float>();
  const float* gp = g.data_ptr<float>();
  float* gcp = gcoef.data_ptr<float>();
  float* gxp = gx.data_ptr<float>();

  // dL/dcoef: four batch sums per gate.
  at::parallel_for(0, N, grain(B), [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) {
      const float* a = xp + ap[n] * B;
      const float* b = xp + bp[n] * B;
      const float* gn = gp + n * B;
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
      for (int64_t j = 0; j < B; ++j) {
        const float ga = gn[j] * a[j];
        s0 += gn[j];
        s1 += ga;
        s2 += gn[j] * b[j];
        s3 += ga * b[j];
      }
      gcp[4 * n] = s0, gcp[4 * n + 1] = s1, gcp[4 * n + 2] = s2, gcp[4 * n + 3] = s3;
    }
  });

  // dL/dx: gather form. Each input row sums over the gates that read it (CSR of consumers), so
  // threads own disjoint rows and need no atomics.
  const Consumers cons(ap, bp, N, in_dim);
  const std::vector<int64_t>& start = cons.start;
  const std::vector<int64_t>& users = cons.users;
  at::parallel_for(0, in_dim, grain(2 * B), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      float* out = gxp + r * B;
      for (int64_t k = start[r]; k < start[r + 1]; ++k) {
        const int64_t n = users[k] >> 1;
        const bool is_b = users[k] & 1;
        const float* other = xp + (is_b ? ap[n] : bp[n]) * B;  // the gate's other input
        const float lin = is_b ? cp[4 * n + 2] : cp[4 * n + 1];
        const float c3 = cp[4 * n + 3];
        const float* gn = gp + n * B;
#pragma omp simd
        for (int64_t j = 0; j < B; ++j) out[j] += gn[j] * (lin + c3 * other[j]);
      }
    }
  });
  return {gx, gcoef};
}

// Bit packing of 0/1 activations: [rows, n] float -> [rows, ceil(n/8)] uint8 (bit j%8 of byte j/8).
torch::Tensor pack_bits(torch::Tensor x) {
  TORCH_CHECK(x.dim() == 2 && x.is_contiguous() && x.scalar_type() == torch::kFloat32, "x: [rows, n] float32");
  const int64_t rows = x.size(0), n = x.size(1), nb = (n + 7) / 8, full = n / 8;
  auto p = torch::empty({rows, nb}, x.options().dtype(torch::kUInt8));
  const float* xp = x.data_ptr<float>();
  uint8_t* pp = p.data_ptr<uint8_t>();
  at::parallel_for(0, rows, grain(n), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float* row = xp + r * n;
      uint8_t* out = pp + r * nb;
      for (int64_t k = 0; k < full; ++k) out[k] = pack8(row + 8 * k);
      if (full < nb) {  // the last, partial byte; its unused high bits are 0
        uint8_t byte = 0;
        for (int64_t t = 0; t < n - 8 * full; ++t) byte |= static_cast<uint8_t>(row[8 * full + t] != 0.0f) << t;
        out[full] = byte;
      }
    }
  });
  return p;
}

torch::Tensor unpack_bits(torch::Tensor p, int64_t n) {
  TORCH_CHECK(p.dim() == 2 && p.is_contiguous() && p.scalar_type() == torch::kUInt8, "p: [rows, nb] uint8");
  const int64_t rows = p.size(0), nb = p.size(1), full = n / 8;
  TORCH_CHECK(nb == (n + 7) / 8, "unpack_bits: ", nb, " bytes per row do not hold ", n, " bits");
  auto x = torch::empty({rows, n}, p.options().dtype(torch::kFloat32));
  const uint8_t* pp = p.data_ptr<uint8_t>();
  float* xp = x.data_ptr<float>();
  at::parallel_for(0, rows, grain(n), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const uint8_t* in = pp + r * nb;
      float* out = xp + r * n;
      for (int64_t k = 0; k < full; ++k) std::memcpy(out + 8 * k, kBits.v[in[k]], 8 * sizeof(float));
      for (int64_t j = 8 * full; j < n; ++j) out[j] = kBits.v[in[full]][j - 8 * full];
    }
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
  const int64_t* ap = ia.data_ptr<int64_t>();
  const int64_t* bp = ib.data_ptr<int64_t>();
  const float* cp = coef.data_ptr<float>();
  const float* gp = g.data_ptr<float>();
  float* gcp = gcoef.data_ptr<float>();

  // The four sums of gate n (a = row ia[n], b = row ib[n]); out, if given, += g * (lin + c3 * b).
  auto gate = [&](int64_t n, float* out, float lin) {
    const uint8_t* ab = pp + ap[n] * nb;
    const uint8_t* bb = pp + bp[n] * nb;
    const float* gn = gp + n * B;
    const float c3 = cp[4 * n + 3];
    float s0[8] = {0}, s1[8] = {0}, s2[8] = {0}, s3[8] = {0};
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
      if (out) {
        float* o = out + 8 * k;
#pragma omp simd
        for (int t = 0; t < 8; ++t) o[t] += gv[t] * (lin + c3 * bv[t]);
      }
    }
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
  const std::vector<int64_t>& start = cons.start;
  const std::vector<int64_t>& users = cons.users;
  at::parallel_for(0, in_dim, grain(2 * B), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      float* out = gxp + r * B;
      std::fill(out, out + B, 0.0f);
      for (int64_t k = start[r]; k < start[r + 1]; ++k) {
        const int64_t n = users[k] >> 1;
        if (!(users[k] & 1)) {  // input a: the other input is b, and this gate's sums are ours
          gate(n, out, cp[4 * n + 1]);
          continue;
        }
        const uint8_t* ob = pp + ap[n] * nb;  // input b: the other input is a
        const float lin = cp[4 * n + 2], c3 = cp[4 * n + 3];
        const float* gn = gp + n * B;
        for (int64_t q = 0; q < full; ++q) {
          const float* ov = kBits.v[ob[q]];
          const float* gv = gn + 8 * q;
          float* o = out + 8 * q;
#pragma omp simd
          for (int t = 0; t < 8; ++t) o[t] += gv[t] * (lin + c3 * ov[t]);
        }
        for (int64_t t = 0; t < tail; ++t) out[8 * full + t] += gn[8 * full + t] * (lin + c3 * kBits.v[ob[full]][t]);
      }
    }
  });
  return {gx, gcoef};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "logic layer forward");
  m.def("backward", &backward, "logic layer backward: (grad_x, grad_coef)");
  m.def("pack_bits", &pack_bits, "pack 0/1 float rows into bytes");
  m.def("unpack_bits", &unpack_bits, "unpack bytes into 0/1 float rows");
  m.def("backward_bits", &backward_bits, "logic layer backward from bit-packed 0/1 input: (grad_x, grad_coef)");
}
