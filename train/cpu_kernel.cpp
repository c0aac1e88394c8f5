// Fused CPU kernels for the logic layer (see train/functional.py for the math).
// Layout: neuron-major, x[in_dim][B], y[N][B], all float32 and contiguous.
// Threads come from PyTorch's own pool (at::parallel_for), so torch.set_num_threads governs them and
// no second OpenMP runtime competes with PyTorch's.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <vector>

namespace {

void check(const torch::Tensor& x, const torch::Tensor& ia, const torch::Tensor& ib, const torch::Tensor& coef) {
  TORCH_CHECK(x.dim() == 2 && x.is_contiguous() && x.scalar_type() == torch::kFloat32, "x: [in, B] float32 contiguous");
  TORCH_CHECK(ia.scalar_type() == torch::kInt64 && ib.scalar_type() == torch::kInt64, "ia/ib: int64");
  TORCH_CHECK(coef.dim() == 2 && coef.size(1) == 4 && coef.is_contiguous(), "coef: [N, 4] contiguous");
}

// Rows per task so that a task touches about 16K elements.
int64_t grain(int64_t row_len) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, row_len)); }

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
  std::vector<int64_t> start(in_dim + 1, 0), users(2 * N);
  for (int64_t n = 0; n < N; ++n) ++start[ap[n] + 1], ++start[bp[n] + 1];
  for (int64_t r = 0; r < in_dim; ++r) start[r + 1] += start[r];
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t n = 0; n < N; ++n) {
      users[fill[ap[n]]++] = 2 * n;      // this row is input a of gate n
      users[fill[bp[n]]++] = 2 * n + 1;  // this row is input b of gate n
    }
  }
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
  const int64_t rows = x.size(0), n = x.size(1), nb = (n + 7) / 8;
  auto p = torch::empty({rows, nb}, x.options().dtype(torch::kUInt8));
  const float* xp = x.data_ptr<float>();
  uint8_t* pp = p.data_ptr<uint8_t>();
  at::parallel_for(0, rows, grain(n), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float* row = xp + r * n;
      for (int64_t k = 0; k < nb; ++k) {
        uint8_t byte = 0;
        const int64_t lim = std::min<int64_t>(8, n - 8 * k);
        for (int64_t t = 0; t < lim; ++t) byte |= (row[8 * k + t] != 0.0f) << t;
        pp[r * nb + k] = byte;
      }
    }
  });
  return p;
}

torch::Tensor unpack_bits(torch::Tensor p, int64_t n) {
  TORCH_CHECK(p.dim() == 2 && p.is_contiguous() && p.scalar_type() == torch::kUInt8, "p: [rows, nb] uint8");
  const int64_t rows = p.size(0), nb = p.size(1);
  auto x = torch::empty({rows, n}, p.options().dtype(torch::kFloat32));
  const uint8_t* pp = p.data_ptr<uint8_t>();
  float* xp = x.data_ptr<float>();
  at::parallel_for(0, rows, grain(n), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r)
      for (int64_t j = 0; j < n; ++j) xp[r * n + j] = (pp[r * nb + j / 8] >> (j % 8)) & 1;
  });
  return x;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "logic layer forward");
  m.def("backward", &backward, "logic layer backward: (grad_x, grad_coef)");
  m.def("pack_bits", &pack_bits, "pack 0/1 float rows into bytes");
  m.def("unpack_bits", &unpack_bits, "unpack bytes into 0/1 float rows");
}
