// The segmentation model's convolutions, run faster than OpenCV 4.6 runs them.
//
// U²-Net-p spends ~95 % of an inference in 3x3 stride-1 convolutions over large maps: 39.5 GFLOP per
// 320² input, 38 % of it in one 128 -> 64 channel layer at full resolution. OpenCV 4.6 computes them
// directly at ~70 GFLOPS on two cores (~700 ms). This layer replaces OpenCV's "Convolution" for the
// cases the model uses:
//   - undilated 3x3 over maps of at least 32² with at least 8 channels in and out: Winograd
//     F(4x4, 3x3), four times fewer multiplications, as 36 GEMMs per block of tiles;
//   - any other stride-1, ungrouped, symmetrically padded convolution: im2col + GEMM;
// both on OpenBLAS (single-threaded; the blocks are spread over OpenCV's threads, so the engine's
// thread setting still holds). Everything else (groups, strides, asymmetric or "same" padding,
// weights given as an input) is built as OpenCV's own layer, unchanged.
//
// The result matches OpenCV's layer to ~1e-5 of the output scale with Winograd and ~1e-7 with
// im2col (checked by CImagingBridge_convolutionCheck in the tests). On x86-64 Winograd's transforms
// are compiled twice, plain and for AVX2 + FMA, and picked at run time, so the binary runs on any
// x86-64; elsewhere only the plain copy exists.
#include <cblas.h>
#include <cstring>
#include <memory>
#include <mutex>
#include <opencv2/dnn.hpp>
#include <opencv2/dnn/all_layers.hpp>
#include <opencv2/dnn/layer.details.hpp>
#include <opencv2/dnn/shape_utils.hpp>
#include <random>
#include <vector>

#include "bridge_internal.hpp"

extern "C" void openblas_set_num_threads(int threads);

namespace {

/// Tiles per Winograd block and output columns per im2col tile: large enough for efficient GEMMs,
/// small enough for the block's buffers to stay in cache (measured: 96-192 tiles best here).
constexpr int kTilesPerBlock = 192;
constexpr int kColumnsPerTile = 2048;

struct Geometry {
    int kernelH = 1, kernelW = 1, dilationH = 1, dilationW = 1, padH = 0, padW = 0;
};

/// The parameters OpenCV's ONNX importer gives a Conv node, when this layer can run it.
bool readGeometry(const cv::dnn::LayerParams &params, Geometry &g) {
    for (const char *unsupported : {"pad_mode", "kernel_h", "pad_h", "pad_t", "pad_l", "pad_b", "pad_r", "stride_h",
                                    "adj", "out_pad"})
        if (params.has(unsupported)) return false;
    if (params.get<int>("group", 1) != 1) return false;
    if (params.blobs.empty() || params.blobs[0].dims != 4 || params.blobs[0].type() != CV_32F ||
        !params.blobs[0].isContinuous())
        return false;
    if (params.blobs.size() > 1 && (params.blobs[1].total() != size_t(params.blobs[0].size[0]) ||
                                    params.blobs[1].type() != CV_32F))
        return false;
    auto pair = [&](const char *name, int fallback, int &first, int &second) {
        first = second = fallback;
        if (!params.has(name)) return true;
        const cv::dnn::DictValue &value = params.get(name);
        if (value.size() == 1) first = second = value.get<int>(0);
        else if (value.size() == 2) first = value.get<int>(0), second = value.get<int>(1);
        else return false;
        return true;
    };
    int strideH = 1, strideW = 1;
    if (!pair("kernel_size", 1, g.kernelH, g.kernelW) || !pair("stride", 1, strideH, strideW) ||
        !pair("dilation", 1, g.dilationH, g.dilationW))
        return false;
    if (strideH != 1 || strideW != 1) return false;
    if (params.has("pad")) {
        // ONNX order: begin of each axis, then end of each axis. Only symmetric padding here.
        const cv::dnn::DictValue &pad = params.get("pad");
        if (pad.size() == 4) {
            if (pad.get<int>(0) != pad.get<int>(2) || pad.get<int>(1) != pad.get<int>(3)) return false;
            g.padH = pad.get<int>(0), g.padW = pad.get<int>(1);
        } else if (!pair("pad", 0, g.padH, g.padW)) return false;
    }
    const cv::Mat &w = params.blobs[0];
    return g.kernelH == w.size[2] && g.kernelW == w.size[3] && g.kernelH > 0 && g.kernelW > 0 &&
           g.dilationH > 0 && g.dilationW > 0 && g.padH >= 0 && g.padW >= 0;
}

// MARK: Winograd F(4x4, 3x3)
// Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A over 6x6 input tiles giving 4x4 outputs (Lavin & Gray, 2016;
// interpolation points 0, ±1, ±2, ∞).

/// Bᵀ applied to six values (the input transform, one axis).
#define WINOGRAD_INPUT(d0, d1, d2, d3, d4, d5, out, stride)                                        \
    do {                                                                                          \
        (out)[0 * (stride)] = 4 * (d0) - 5 * (d2) + (d4);                                         \
        (out)[1 * (stride)] = -4 * (d1) - 4 * (d2) + (d3) + (d4);                                 \
        (out)[2 * (stride)] = 4 * (d1) - 4 * (d2) - (d3) + (d4);                                  \
        (out)[3 * (stride)] = -2 * (d1) - (d2) + 2 * (d3) + (d4);                                 \
        (out)[4 * (stride)] = 2 * (d1) - (d2) - 2 * (d3) + (d4);                                  \
        (out)[5 * (stride)] = 4 * (d1) - 5 * (d3) + (d5);                                         \
    } while (0)

/// Aᵀ applied to six values (the output transform, one axis).
#define WINOGRAD_OUTPUT(m0, m1, m2, m3, m4, m5, out, stride)                                       \
    do {                                                                                          \
        (out)[0 * (stride)] = (m0) + (m1) + (m2) + (m3) + (m4);                                   \
        (out)[1 * (stride)] = (m1) - (m2) + 2 * (m3) - 2 * (m4);                                  \
        (out)[2 * (stride)] = (m1) + (m2) + 4 * (m3) + 4 * (m4);                                  \
        (out)[3 * (stride)] = (m1) - (m2) + 8 * (m3) - 8 * (m4) + (m5);                           \
    } while (0)

struct WinogradShape {
    const float *input;   // C x H x W
    float *output;        // K x Ho x Wo
    int channels, outputs, height, width, outHeight, outWidth, pad;
    int tilesX, tilesY, rowsPerBlock;
    const float *weights; // 36 x K x C, the transformed kernels
    const float *bias;    // K or null
    bool relu;
};

/// Uninitialised floats that only grow: every element used is written before it is read, so there
/// is no point in clearing megabytes per call (std::vector would).
class Scratch {
  public:
    float *atLeast(size_t count) {
        if (count > capacity) {
            buffer.reset(new float[count]);
            capacity = count;
        }
        return buffer.get();
    }

  private:
    std::unique_ptr<float[]> buffer;
    size_t capacity = 0;
};

/// Scratch for the blocks one parallel body runs: V (36 x C x T), M (36 x K x T) and row buffers.
/// Freed when the layer's forward ends, so it does not add to the engine's resident memory.
struct WinogradScratch {
    Scratch transformed, products, rows, half, phases;
};

/// One block of tile rows: input transform, 36 GEMMs, output transform. Inlined into a plain and an
/// AVX2 + FMA copy below; the loops run over tiles innermost so they vectorise.
__attribute__((always_inline)) inline void winogradBlock(const WinogradShape &s, int block,
                                                         WinogradScratch &scratch) {
    const int tilesX = s.tilesX, C = s.channels, K = s.outputs;
    const int firstRow = block * s.rowsPerBlock;
    const int rows = std::min(s.rowsPerBlock, s.tilesY - firstRow), T = rows * tilesX;
    const int padded = 4 * tilesX + 4; // input columns one tile row reads (4 tilesX + 2), rounded up
    float *V = scratch.transformed.atLeast(size_t(36) * C * T);
    float *M = scratch.products.atLeast(size_t(36) * K * T);
    float *rowBuffer = scratch.rows.atLeast(size_t(6) * padded);
    float *half = scratch.half.atLeast(size_t(36) * tilesX);
    float *phases = scratch.phases.atLeast(size_t(4) * (tilesX + 1));

    for (int c = 0; c < C; c++) {
        const float *plane = s.input + size_t(c) * s.height * s.width;
        for (int r = 0; r < rows; r++) {
            const int top = 4 * (firstRow + r) - s.pad;
            // The six input rows this tile row reads, zero-padded on every side.
            const int left = std::min(s.pad, padded), copied = std::max(0, std::min(s.width, padded - left));
            for (int i = 0; i < 6; i++) {
                float *row = rowBuffer + i * padded;
                const int y = top + i;
                if (y < 0 || y >= s.height) {
                    std::fill(row, row + padded, 0.f);
                    continue;
                }
                std::fill(row, row + left, 0.f);
                std::memcpy(row + left, plane + size_t(y) * s.width, copied * sizeof(float));
                std::fill(row + left + copied, row + padded, 0.f);
            }
            // Columns first: half[i][j][t] = Bᵀ over the six columns of tile t in row i. Each row is
            // split into its four phases (phase k holds columns 4t + k) so that the transform reads
            // contiguous memory and vectorises.
            float *__restrict p0 = phases, *__restrict p1 = p0 + tilesX + 1,
                              *__restrict p2 = p1 + tilesX + 1, *__restrict p3 = p2 + tilesX + 1;
            for (int i = 0; i < 6; i++) {
                const float *__restrict row = rowBuffer + i * padded;
                for (int t = 0; t <= tilesX; t++)
                    p0[t] = row[4 * t], p1[t] = row[4 * t + 1], p2[t] = row[4 * t + 2], p3[t] = row[4 * t + 3];
                float *__restrict out = half + i * 6 * tilesX;
                for (int t = 0; t < tilesX; t++)
                    WINOGRAD_INPUT(p0[t], p1[t], p2[t], p3[t], p0[t + 1], p1[t + 1], out + t, tilesX);
            }
            // Then rows: V[i'j][c][tile] = Bᵀ over half[0..5][j].
            for (int j = 0; j < 6; j++) {
                const float *h[6];
                for (int i = 0; i < 6; i++) h[i] = half + (i * 6 + j) * tilesX;
                float *out = V + (size_t(j) * C + c) * T + r * tilesX;
                const size_t stride = size_t(6) * C * T; // from V[i'][j] to V[i'+1][j]
                for (int t = 0; t < tilesX; t++)
                    WINOGRAD_INPUT(h[0][t], h[1][t], h[2][t], h[3][t], h[4][t], h[5][t], out + t, stride);
            }
        }
    }
    for (int k = 0; k < 36; k++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, T, C, 1.f, s.weights + size_t(k) * K * C, C,
                    V + size_t(k) * C * T, T, 0.f, M + size_t(k) * K * T, T);

    for (int o = 0; o < K; o++) {
        const float bias = s.bias ? s.bias[o] : 0.f;
        float *plane = s.output + size_t(o) * s.outHeight * s.outWidth;
        for (int r = 0; r < rows; r++) {
            // Rows first: half[a][j][t] = Aᵀ over M[0..5][j].
            for (int j = 0; j < 6; j++) {
                const float *m[6];
                for (int i = 0; i < 6; i++) m[i] = M + (size_t(i * 6 + j) * K + o) * T + r * tilesX;
                float *out = half + j * tilesX;
                for (int t = 0; t < tilesX; t++)
                    WINOGRAD_OUTPUT(m[0][t], m[1][t], m[2][t], m[3][t], m[4][t], m[5][t], out + t, 6 * tilesX);
            }
            // Locals, not s.*: the stores below could alias them as far as the compiler knows.
            const int outWidth = s.outWidth, fullTiles = outWidth / 4;
            const float floor = s.relu ? 0.f : -INFINITY; // max(v, floor) is the fused ReLU
            for (int a = 0; a < 4; a++) {
                const int y = 4 * (firstRow + r) + a;
                if (y >= s.outHeight) break;
                const float *__restrict h = half + a * 6 * tilesX;
                float *__restrict out = plane + size_t(y) * outWidth;
                for (int t = 0; t < fullTiles; t++) {
                    float values[4];
                    WINOGRAD_OUTPUT(h[t], h[tilesX + t], h[2 * tilesX + t], h[3 * tilesX + t], h[4 * tilesX + t],
                                    h[5 * tilesX + t], values, 1);
                    for (int q = 0; q < 4; q++) out[4 * t + q] = std::max(values[q] + bias, floor);
                }
                for (int t = fullTiles; t < tilesX; t++) {
                    float values[4];
                    WINOGRAD_OUTPUT(h[t], h[tilesX + t], h[2 * tilesX + t], h[3 * tilesX + t], h[4 * tilesX + t],
                                    h[5 * tilesX + t], values, 1);
                    for (int q = 0; q < outWidth - 4 * t; q++) out[4 * t + q] = std::max(values[q] + bias, floor);
                }
            }
        }
    }
}

void winogradBlockPlain(const WinogradShape &s, int block, WinogradScratch &scratch) {
    winogradBlock(s, block, scratch);
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) void winogradBlockAVX2(const WinogradShape &s, int block,
                                                           WinogradScratch &scratch) {
    winogradBlock(s, block, scratch);
}

void winogradBlockBest(const WinogradShape &s, int block, WinogradScratch &scratch) {
    static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2) winogradBlockAVX2(s, block, scratch);
    else winogradBlockPlain(s, block, scratch);
}
#else
void winogradBlockBest(const WinogradShape &s, int block, WinogradScratch &scratch) {
    winogradBlockPlain(s, block, scratch);
}
#endif

/// The 3x3 kernels as G g Gᵀ, laid out 36 x K x C for the GEMMs.
std::vector<float> winogradWeights(const float *weights, int outputs, int channels) {
    std::vector<float> result(size_t(36) * outputs * channels);
    auto transform = [](float g0, float g1, float g2, float *out) {
        out[0] = g0 / 4;
        out[1] = -(g0 + g1 + g2) / 6;
        out[2] = -(g0 - g1 + g2) / 6;
        out[3] = g0 / 24 + g1 / 12 + g2 / 6;
        out[4] = g0 / 24 - g1 / 12 + g2 / 6;
        out[5] = g2;
    };
    for (int o = 0; o < outputs; o++) {
        for (int c = 0; c < channels; c++) {
            const float *g = weights + (size_t(o) * channels + c) * 9;
            float columns[3][6], u[6];
            for (int k = 0; k < 3; k++) transform(g[k], g[3 + k], g[6 + k], columns[k]);
            for (int i = 0; i < 6; i++) {
                transform(columns[0][i], columns[1][i], columns[2][i], u);
                for (int j = 0; j < 6; j++) result[(size_t(i * 6 + j) * outputs + o) * channels + c] = u[j];
            }
        }
    }
    return result;
}

// MARK: The layer

/// Set on a thread that builds a reference net with OpenCV's own convolutions (the model check
/// below). The dnn module instantiates layers lazily, in the thread that sets the net up.
thread_local bool buildingReference = false;

class FastConvolution : public cv::dnn::Layer {
  public:
    static cv::Ptr<cv::dnn::Layer> create(cv::dnn::LayerParams &params) {
        Geometry geometry;
        if (buildingReference || !readGeometry(params, geometry)) return cv::dnn::ConvolutionLayer::create(params);
        return cv::makePtr<FastConvolution>(params, geometry);
    }

    FastConvolution(const cv::dnn::LayerParams &params, const Geometry &geometry)
        : Layer(params), g(geometry) {
        blobs = params.blobs;
        const cv::Mat &w = blobs[0];
        if (g.kernelH == 3 && g.kernelW == 3 && g.dilationH == 1 && g.dilationW == 1 && g.padH == g.padW &&
            w.size[0] >= 8 && w.size[1] >= 8)
            winograd = winogradWeights(w.ptr<float>(), w.size[0], w.size[1]);
    }

    bool getMemoryShapes(const std::vector<cv::dnn::MatShape> &inputs, int, std::vector<cv::dnn::MatShape> &outputs,
                         std::vector<cv::dnn::MatShape> &) const override {
        CV_Assert(inputs.size() == 1 && inputs[0].size() == 4 && inputs[0][1] == blobs[0].size[1]);
        const cv::dnn::MatShape &in = inputs[0];
        const int height = in[2] + 2 * g.padH - g.dilationH * (g.kernelH - 1);
        const int width = in[3] + 2 * g.padW - g.dilationW * (g.kernelW - 1);
        CV_Assert(height > 0 && width > 0);
        outputs.assign(1, cv::dnn::MatShape{in[0], blobs[0].size[0], height, width});
        return false;
    }

    /// Takes a following plain ReLU into the output loop, as OpenCV's own layer does.
    bool setActivation(const cv::Ptr<cv::dnn::ActivationLayer> &layer) override {
        if (!layer) { // clears a fused activation
            fusedRelu = false;
            return false;
        }
        cv::Ptr<cv::dnn::ReLULayer> relu = layer.dynamicCast<cv::dnn::ReLULayer>();
        if (fusedRelu || !relu || relu->negativeSlope != 0.f) return false;
        fusedRelu = true;
        return true;
    }

    void forward(cv::InputArrayOfArrays inputsArray, cv::OutputArrayOfArrays outputsArray,
                 cv::OutputArrayOfArrays) override {
        std::vector<cv::Mat> inputs, outputs;
        inputsArray.getMatVector(inputs);
        outputsArray.getMatVector(outputs);
        const cv::Mat &x = inputs[0];
        cv::Mat &y = outputs[0];
        CV_Assert(x.type() == CV_32F && x.isContinuous() && y.isContinuous());
        for (int n = 0; n < x.size[0]; n++) {
            const float *input = x.ptr<float>(n);
            float *output = y.ptr<float>(n);
            ranWinograd = !winograd.empty() && y.size[2] * y.size[3] >= 32 * 32;
            if (ranWinograd) runWinograd(x, y, input, output);
            else runIm2col(x, y, input, output);
        }
    }

    /// Which path the last forward took (for the tests).
    bool ranWinograd = false;

  private:
    Geometry g;
    std::vector<float> winograd;
    bool fusedRelu = false;

    const float *bias() const { return blobs.size() > 1 ? blobs[1].ptr<float>() : nullptr; }

    void runWinograd(const cv::Mat &x, const cv::Mat &y, const float *input, float *output) const {
        WinogradShape s{input, output, x.size[1], y.size[1], x.size[2], x.size[3], y.size[2], y.size[3], g.padH,
                        (y.size[3] + 3) / 4, (y.size[2] + 3) / 4, 1, winograd.data(), bias(), fusedRelu};
        // At least four blocks when the map allows it, so both threads have work on small maps.
        s.rowsPerBlock = std::max(1, std::min(kTilesPerBlock / s.tilesX, (s.tilesY + 3) / 4));
        const int blocks = (s.tilesY + s.rowsPerBlock - 1) / s.rowsPerBlock;
        cv::parallel_for_(cv::Range(0, blocks), [&](const cv::Range &range) {
            WinogradScratch scratch;
            for (int block = range.start; block < range.end; block++) winogradBlockBest(s, block, scratch);
        });
    }

    void runIm2col(const cv::Mat &x, const cv::Mat &y, const float *input, float *output) const {
        const int C = x.size[1], H = x.size[2], W = x.size[3];
        const int K = y.size[1], Ho = y.size[2], Wo = y.size[3];
        const int depth = C * g.kernelH * g.kernelW;
        const float *weights = blobs[0].ptr<float>(), *b = bias();
        const bool pointwise = g.kernelH == 1 && g.kernelW == 1 && g.padH == 0 && g.padW == 0;
        const int rowsPerTile = std::max(1, std::min(kColumnsPerTile / Wo, (Ho + 3) / 4));
        const int tiles = (Ho + rowsPerTile - 1) / rowsPerTile;
        cv::parallel_for_(cv::Range(0, tiles), [&](const cv::Range &range) {
            Scratch columns;
            for (int tile = range.start; tile < range.end; tile++) {
                const int y0 = tile * rowsPerTile, y1 = std::min(Ho, y0 + rowsPerTile), count = (y1 - y0) * Wo;
                const float *matrix = input + size_t(y0) * W;
                int stride = H * W;
                if (!pointwise) {
                    // One row per (channel, ky, kx): the input shifted by the tap, zero outside.
                    float *const rowsOfTaps = columns.atLeast(size_t(depth) * count);
                    for (int c = 0; c < C; c++)
                        for (int ky = 0; ky < g.kernelH; ky++)
                            for (int kx = 0; kx < g.kernelW; kx++) {
                                float *out = rowsOfTaps + size_t((c * g.kernelH + ky) * g.kernelW + kx) * count;
                                const int dx = kx * g.dilationW - g.padW;
                                const int from = std::clamp(-dx, 0, Wo), to = std::clamp(W - dx, from, Wo);
                                for (int row = y0; row < y1; row++, out += Wo) {
                                    const int sy = row + ky * g.dilationH - g.padH;
                                    if (sy < 0 || sy >= H || to <= from) {
                                        std::fill(out, out + Wo, 0.f);
                                        continue;
                                    }
                                    std::fill(out, out + from, 0.f);
                                    std::memcpy(out + from, input + (size_t(c) * H + sy) * W + from + dx,
                                                (to - from) * sizeof(float));
                                    std::fill(out + to, out + Wo, 0.f);
                                }
                            }
                    matrix = rowsOfTaps;
                    stride = count;
                }
                float *result = output + size_t(y0) * Wo;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, count, depth, 1.f, weights, depth, matrix,
                            stride, 0.f, result, Ho * Wo);
                for (int o = 0; o < K; o++) {
                    float *row = result + size_t(o) * Ho * Wo;
                    const float bias = b ? b[o] : 0.f;
                    if (fusedRelu) for (int i = 0; i < count; i++) row[i] = std::max(row[i] + bias, 0.f);
                    else for (int i = 0; i < count; i++) row[i] += bias;
                }
            }
        });
    }
};

} // namespace

namespace imaging {

void registerFastConvolution() {
    static std::once_flag once;
    std::call_once(once, [] {
        // One BLAS thread per call: the layer spreads its blocks over OpenCV's threads itself.
        openblas_set_num_threads(1);
        cv::dnn::LayerFactory::registerLayer("Convolution", FastConvolution::create);
    });
}

} // namespace imaging

/// Runs one random convolution through OpenCV's own layer and through FastConvolution and reports
/// the largest difference and the largest reference value (for the tests).
extern "C" int CImagingBridge_convolutionCheck(int channels, int outputs, int height, int width, int kernel,
                                               int dilation, int pad, int relu, double *maxDifference,
                                               double *maxReference, int *usedWinograd, char *error,
                                               size_t errorSize) {
    return imaging::guarded("convolution check", error, errorSize, [&] {
        imaging::registerFastConvolution(); // the production setup: OpenBLAS single-threaded
        std::mt19937 random(uint32_t(channels * 7919 + outputs * 104729 + height * 31 + width));
        std::uniform_real_distribution<float> uniform(-1.f, 1.f);
        auto fill = [&](cv::Mat &m) {
            for (size_t i = 0; i < m.total(); i++) m.ptr<float>()[i] = uniform(random);
        };
        int weightShape[] = {outputs, channels, kernel, kernel}, inputShape[] = {1, channels, height, width};
        cv::Mat weights(4, weightShape, CV_32F), bias(1, outputs, CV_32F), input(4, inputShape, CV_32F);
        fill(weights), fill(bias), fill(input);
        cv::dnn::LayerParams params;
        params.type = "Convolution";
        params.name = "check";
        int sizes[] = {kernel, kernel}, dilations[] = {dilation, dilation}, strides[] = {1, 1};
        int pads[] = {pad, pad, pad, pad};
        params.set("kernel_size", cv::dnn::DictValue::arrayInt(sizes, 2));
        params.set("dilation", cv::dnn::DictValue::arrayInt(dilations, 2));
        params.set("stride", cv::dnn::DictValue::arrayInt(strides, 2));
        params.set("pad", cv::dnn::DictValue::arrayInt(pads, 4));
        params.set("num_output", outputs);
        params.set("group", 1);
        params.set("bias_term", true);
        params.blobs = {weights, bias};

        auto run = [&](cv::Ptr<cv::dnn::Layer> layer) {
            if (relu) {
                cv::dnn::LayerParams reluParams;
                cv::Ptr<cv::dnn::ActivationLayer> activation = cv::dnn::ReLULayer::create(reluParams);
                if (!layer->setActivation(activation)) throw std::runtime_error("ReLU was not fused");
            }
            std::vector<cv::dnn::MatShape> inShapes{cv::dnn::shape(input)}, outShapes, internalShapes;
            layer->getMemoryShapes(inShapes, 1, outShapes, internalShapes);
            std::vector<cv::Mat> ins{input}, outs{cv::Mat(outShapes[0], CV_32F)}, internals;
            for (const auto &shape : internalShapes) internals.emplace_back(shape, CV_32F);
            layer->finalize(cv::InputArrayOfArrays(ins), cv::OutputArrayOfArrays(outs));
            layer->forward(ins, outs, internals);
            return outs[0];
        };
        cv::dnn::LayerParams copy = params;
        cv::Mat reference = run(cv::dnn::ConvolutionLayer::create(copy));
        cv::Ptr<cv::dnn::Layer> fast = FastConvolution::create(params);
        auto *ours = dynamic_cast<FastConvolution *>(fast.get());
        if (!ours) throw std::runtime_error("the geometry is not one FastConvolution runs");
        cv::Mat result = run(fast);
        *maxDifference = cv::norm(reference, result, cv::NORM_INF);
        *maxReference = cv::norm(reference, cv::NORM_INF);
        *usedWinograd = ours->ranWinograd ? 1 : 0;
        return 0;
    });
}

/// Runs the model at `modelPath` on a fixed random 320² input twice: as the engine loads it and with
/// OpenCV's own convolutions. Reports how many convolution layers each net has and how many of the
/// engine's are FastConvolution, and the largest difference of the first output (for the tests).
extern "C" int CImagingBridge_modelConvolutionCheck(const char *modelPath, int *convolutions, int *fast,
                                                    double *maxDifference, char *error, size_t errorSize) {
    return imaging::guarded("model convolution check", error, errorSize, [&] {
        imaging::registerFastConvolution();
        cv::Mat image(320, 320, CV_32FC3);
        cv::RNG(20261129).fill(image, cv::RNG::UNIFORM, -2, 2);
        cv::Mat blob = cv::dnn::blobFromImage(image);
        auto run = [&](bool reference, int &convolutionCount, int &fastCount) {
            buildingReference = reference;
            cv::Mat output;
            try {
                cv::dnn::Net net = cv::dnn::readNetFromONNX(modelPath);
                net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
                net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
                net.setInput(blob);
                output = net.forward(net.getUnconnectedOutLayersNames().front()).clone();
                convolutionCount = fastCount = 0;
                for (const std::string &name : net.getLayerNames()) {
                    cv::Ptr<cv::dnn::Layer> layer = net.getLayer(net.getLayerId(name));
                    fastCount += dynamic_cast<FastConvolution *>(layer.get()) != nullptr;
                    convolutionCount += layer->type == "Convolution";
                }
            } catch (...) {
                buildingReference = false;
                throw;
            }
            buildingReference = false;
            return output;
        };
        int referenceConvolutions = 0, referenceFast = 0;
        cv::Mat ours = run(false, *convolutions, *fast);
        cv::Mat theirs = run(true, referenceConvolutions, referenceFast);
        if (referenceFast != 0 || referenceConvolutions != *convolutions)
            throw std::runtime_error("the reference net did not use OpenCV's convolutions");
        *maxDifference = cv::norm(ours, theirs, cv::NORM_INF);
        return 0;
    });
}
