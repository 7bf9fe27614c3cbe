// Integer-factor enlargement: a separable, locally bounded cubic.
//
// Each output sample is a Keys cubic (a = -1, sharper than Catmull-Rom's -0.5: the "mild
// sharpening") of the four nearest inputs along one axis, then clamped to the range of the two
// nearest. The clamp is what keeps the sharper kernel from ringing: no output value lies outside
// the 2x2 input neighbourhood it falls in, so there are no halos and no dark or bright fringes at
// high-contrast edges. Pixel centres map onto pixel centres (x_in = (x_out + 0.5) / f - 0.5).
//
// Why not libvips: `vips_resize` ignores the kernel when enlarging and shifts half a pixel (8.14),
// and `vips_affine` with nohalo costs ~1.4 s for 2x of 1024x1024 on two cores (docs/engine.md has
// the measurements); this is ~15x faster and within 0.2-0.8 dB of nohalo on the dev samples.
//
// RGBA is interpolated premultiplied (alpha-aware: a transparent pixel's colour never bleeds into
// its neighbours), unpremultiplied at the end and its straight colour bounded by the 2x2 nearest
// non-transparent inputs (bounding premultiplied colour and alpha separately is not enough at a
// cut-out edge). Memory: the output plus a ring of four horizontally enlarged rows per worker.
#include <glib.h>
#include <opencv2/core.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "bridge_internal.hpp"

namespace {

constexpr double kCubicA = -1.0;

/// Keys cubic weights for a sample at fraction t in [0, 1) between the 2nd and 3rd of four taps.
void cubicWeights(double t, float weights[4]) {
    const double distances[4] = {1 + t, t, 1 - t, 2 - t};
    for (int i = 0; i < 4; i++) {
        double d = distances[i];
        double w = d <= 1 ? (kCubicA + 2) * d * d * d - (kCubicA + 3) * d * d + 1
                          : kCubicA * d * d * d - 5 * kCubicA * d * d + 8 * kCubicA * d - 4 * kCubicA;
        weights[i] = static_cast<float>(w);
    }
}

inline float bounded(const float taps[4], const float weights[4]) {
    float value = weights[0] * taps[0] + weights[1] * taps[1] + weights[2] * taps[2] + weights[3] * taps[3];
    float low = std::min(taps[1], taps[2]), high = std::max(taps[1], taps[2]);
    return std::min(std::max(value, low), high);
}

struct Upscaler {
    const uint8_t *input;
    int width, height, bands, factor;
    uint8_t *output;
    // Per output phase p (0..factor-1): the first tap's offset from x_out / factor, and weights.
    std::vector<int> tapOffset;
    std::vector<float> weights; // factor x 4

    Upscaler(const uint8_t *input, int width, int height, int bands, int factor, uint8_t *output)
        : input(input), width(width), height(height), bands(bands), factor(factor), output(output),
          tapOffset(factor), weights(static_cast<size_t>(factor) * 4) {
        for (int p = 0; p < factor; p++) {
            double x = (p + 0.5) / factor - 0.5;
            int base = static_cast<int>(std::floor(x));
            tapOffset[p] = base - 1;
            cubicWeights(x - base, &weights[static_cast<size_t>(p) * 4]);
        }
    }

    int clampIndex(int i, int n) const { return i < 0 ? 0 : (i >= n ? n - 1 : i); }

    /// One input row enlarged horizontally, premultiplied when there is alpha. `source` is
    /// scratch for the row's (premultiplied) values, width * bands floats.
    void enlargeRow(int y, float *source, float *row) const {
        const uint8_t *pixels = input + static_cast<size_t>(y) * width * bands;
        for (int x = 0; x < width; x++) {
            const uint8_t *pixel = pixels + static_cast<size_t>(x) * bands;
            float alpha = bands == 4 ? pixel[3] / 255.0f : 1.0f;
            for (int c = 0; c < bands; c++) source[static_cast<size_t>(x) * bands + c] = c < 3 ? pixel[c] * alpha : pixel[c];
        }
        const int outWidth = width * factor;
        float taps[4];
        for (int x = 0; x < outWidth; x++) {
            int phase = x % factor;
            int first = x / factor + tapOffset[phase];
            const float *w = &weights[static_cast<size_t>(phase) * 4];
            for (int c = 0; c < bands; c++) {
                for (int t = 0; t < 4; t++) taps[t] = source[static_cast<size_t>(clampIndex(first + t, width)) * bands + c];
                row[static_cast<size_t>(x) * bands + c] = bounded(taps, w);
            }
        }
    }

    /// Unpremultiplies an RGBA sample and bounds its colour by the straight colours of the 2x2
    /// nearest inputs that are not transparent. Colour and alpha are bounded separately while
    /// premultiplied, which alone lets colour / alpha overshoot at a cut-out edge next to a
    /// contrasting opaque pixel; this keeps the edge free of halos in straight colour too.
    void straightColour(float values[4], int x, int firstRow) const {
        float alpha = values[3];
        if (alpha <= 0.5f) {
            values[0] = values[1] = values[2] = 0;
            return;
        }
        int firstColumn = x / factor + tapOffset[x % factor];
        float low[3] = {255, 255, 255}, high[3] = {0, 0, 0};
        bool any = false;
        for (int j = 1; j <= 2; j++) {
            const uint8_t *row = input + size_t(clampIndex(firstRow + j, height)) * width * 4;
            for (int i = 1; i <= 2; i++) {
                const uint8_t *pixel = row + size_t(clampIndex(firstColumn + i, width)) * 4;
                if (pixel[3] == 0) continue;
                any = true;
                for (int c = 0; c < 3; c++) low[c] = std::min(low[c], float(pixel[c])), high[c] = std::max(high[c], float(pixel[c]));
            }
        }
        for (int c = 0; c < 3; c++) {
            float straight = values[c] * 255.0f / alpha;
            values[c] = any ? std::min(std::max(straight, low[c]), high[c]) : straight;
        }
    }

    /// Output rows [begin, end).
    void rows(int begin, int end) const {
        const int outWidth = width * factor;
        const size_t rowLength = static_cast<size_t>(outWidth) * bands;
        std::vector<float> ring(rowLength * 4), source(static_cast<size_t>(width) * bands);
        int cached[4] = {-1, -1, -1, -1};
        float taps[4];
        for (int y = begin; y < end; y++) {
            int phase = y % factor;
            int first = y / factor + tapOffset[phase];
            const float *w = &weights[static_cast<size_t>(phase) * 4];
            const float *lines[4];
            for (int t = 0; t < 4; t++) {
                int sourceRow = clampIndex(first + t, height);
                int slot = sourceRow & 3; // four consecutive source rows never share a slot
                float *line = &ring[static_cast<size_t>(slot) * rowLength];
                if (cached[slot] != sourceRow) {
                    enlargeRow(sourceRow, source.data(), line);
                    cached[slot] = sourceRow;
                }
                lines[t] = line;
            }
            uint8_t *out = output + static_cast<size_t>(y) * rowLength;
            for (int x = 0; x < outWidth; x++) {
                size_t at = static_cast<size_t>(x) * bands;
                float values[4];
                for (int c = 0; c < bands; c++) {
                    for (int t = 0; t < 4; t++) taps[t] = lines[t][at + c];
                    values[c] = bounded(taps, w);
                }
                if (bands == 4) straightColour(values, x, first);
                for (int c = 0; c < bands; c++) {
                    float v = std::lround(values[c]);
                    out[at + c] = static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
                }
            }
        }
    }
};

} // namespace

extern "C" int CImagingBridge_upscale(const uint8_t *pixels, int width, int height, int bands, int factor,
                                      uint8_t **output, char *error, size_t errorSize) {
    *output = nullptr;
    if (factor < 1 || (bands != 3 && bands != 4) || width < 1 || height < 1 ||
        long(width) * factor > INT32_MAX || long(height) * factor > INT32_MAX) {
        imaging::setError(error, errorSize, "cannot upscale %dx%dx%d by %d", width, height, bands, factor);
        return CImagingBridgeStatusUnsupported;
    }
    size_t size = static_cast<size_t>(width) * factor * height * factor * bands;
    auto *memory = static_cast<uint8_t *>(g_try_malloc(size));
    if (!memory) {
        imaging::setError(error, errorSize, "upscale: out of memory (%zu bytes)", size);
        return CImagingBridgeStatusInternal;
    }
    int status = imaging::guarded("upscale", error, errorSize, [&] {
        Upscaler upscaler(pixels, width, height, bands, factor, memory);
        const int outHeight = height * factor;
        // Bands of at least 64 rows, so each worker's ring refills few rows twice.
        const int stripes = std::max(1, std::min(cv::getNumThreads() * 2, outHeight / 64));
        cv::parallel_for_(cv::Range(0, stripes), [&](const cv::Range &range) {
            for (int s = range.start; s < range.end; s++) {
                upscaler.rows(static_cast<int>(static_cast<long>(outHeight) * s / stripes),
                              static_cast<int>(static_cast<long>(outHeight) * (s + 1) / stripes));
            }
        });
        return static_cast<int>(CImagingBridgeStatusOK);
    });
    if (status != CImagingBridgeStatusOK) {
        g_free(memory);
        return status;
    }
    *output = memory;
    return CImagingBridgeStatusOK;
}
