// Helpers shared by the OpenCV half of the bridge (C++ only; not part of the public header).
#pragma once
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <exception>
#include <vector>

#include "CImagingBridge.h"

namespace imaging {

/// Makes OpenCV's dnn importer build the model's convolutions as FastConvolution (convolution.cpp).
/// Idempotent; call before reading a model.
void registerFastConvolution();

inline void setError(char *error, size_t size, const char *format, ...) {
    if (!error || size == 0) return;
    va_list args;
    va_start(args, format);
    vsnprintf(error, size, format, args);
    va_end(args);
}

/// Runs `body`, turning any C++ exception (cv::Exception, bad_alloc) into a status and a message:
/// nothing may unwind into Swift.
template <typename Body>
int guarded(const char *stage, char *error, size_t errorSize, Body body) {
    try {
        return body();
    } catch (const cv::Exception &e) {
        setError(error, errorSize, "%s: %s", stage, e.err.c_str());
    } catch (const std::bad_alloc &) {
        setError(error, errorSize, "%s: out of memory", stage);
    } catch (const std::exception &e) {
        setError(error, errorSize, "%s: %s", stage, e.what());
    } catch (...) {
        setError(error, errorSize, "%s: unknown failure", stage);
    }
    return CImagingBridgeStatusInternal;
}

/// Wraps caller memory as a Mat without copying.
inline cv::Mat wrap(const uint8_t *pixels, int width, int height, int channels) {
    return cv::Mat(height, width, CV_8UC(channels), const_cast<uint8_t *>(pixels));
}

/// Scale that brings the long side to at most `limit` (1 when already smaller).
inline double workingScale(int width, int height, int limit) {
    int longSide = width > height ? width : height;
    return longSide > limit ? double(limit) / longSide : 1.0;
}

/// Runs `body(rows)` over [0, rows) in a few stripes per thread (cv::parallel_for_'s default is
/// one stripe per row, which makes per-stripe scratch buffers per-row allocations).
template <typename Body>
void forRows(int rows, Body body) {
    cv::parallel_for_(cv::Range(0, rows), body, std::max(1, std::min(rows, cv::getNumThreads() * 4)));
}

/// A neighbourhood filter `filter(in, out)` applied in horizontal stripes over OpenCV's threads
/// (OpenCV 4.6 runs boxFilter, GaussianBlur on floats and medianBlur with large kernels on one
/// thread). Each stripe is filtered with `reach` rows of real context above and below (at least the
/// kernel's half height), so every row kept saw the same pixels as when filtering the whole image,
/// border handling at the image's edges included: medians and Gaussians come out identical; box
/// filters, which keep a running sum, can differ in the last bit where the sums are inexact. The
/// stripes are fixed (128 rows, or 4x the reach), not the scheduler's, so the result does not depend
/// on the thread count or on timing. `type` is the output's type.
template <typename Filter>
cv::Mat striped(const cv::Mat &image, int reach, int type, Filter filter) {
    cv::Mat result(image.size(), type);
    const int height = std::max(128, 4 * reach), stripes = (image.rows + height - 1) / height;
    cv::parallel_for_(cv::Range(0, stripes), [&](const cv::Range &range) {
        for (int stripe = range.start; stripe < range.end; stripe++) {
            const int start = stripe * height, end = std::min(image.rows, start + height);
            const int top = std::max(0, start - reach), bottom = std::min(image.rows, end + reach);
            cv::Mat out;
            filter(image.rowRange(top, bottom), out);
            out.rowRange(start - top, end - top).copyTo(result.rowRange(start, end));
        }
    });
    return result;
}

/// Gaussian blur (OpenCV's default border, reflect-101) in
/// stripes; the reach covers OpenCV's automatic kernel (about 4 sigma each side for floats).
inline cv::Mat gaussianStriped(const cv::Mat &image, double sigma) {
    return striped(image, int(std::ceil(4 * sigma)) + 2, image.type(), [&](const cv::Mat &in, cv::Mat &out) {
        cv::GaussianBlur(in, out, {0, 0}, sigma);
    });
}

/// `image` scaled by `scale` (< 1) with area averaging, or itself. The size is passed explicitly
/// (rounded, at least 1), so OpenCV maps pixels by the size ratio, as Bilinear below does; with
/// fx/fy it would map by `scale` and drift up to half a working pixel from the edge's true place.
inline cv::Mat shrunk(const cv::Mat &image, double scale) {
    if (scale >= 1) return image;
    cv::Size size(std::max(1, int(std::lround(image.cols * scale))), std::max(1, int(std::lround(image.rows * scale))));
    cv::Mat out;
    cv::resize(image, out, size, 0, 0, cv::INTER_AREA);
    return out;
}

/// Bilinear enlargement of small float planes to full size one row at a time, so no full-size
/// float plane is needed. Sample positions match cv::resize's INTER_LINEAR: output pixel i reads
/// the small plane at (i + 0.5) * small / full - 0.5.
class Bilinear {
  public:
    Bilinear(cv::Size small, int width, int height) : xs(width, small.width), ys(height, small.height) {}

    /// Row `y` of `plane` (the small size, CV_32F) at full width into `out`; `scratch` holds
    /// plane.cols floats.
    void row(const cv::Mat &plane, int y, float *scratch, float *out) const {
        int y0 = ys.low[y], y1 = y0 + 1 < plane.rows ? y0 + 1 : y0;
        float wy = ys.weight[y];
        const float *top = plane.ptr<float>(y0), *bottom = plane.ptr<float>(y1);
        for (int x = 0; x < plane.cols; x++) scratch[x] = top[x] + (bottom[x] - top[x]) * wy;
        int width = int(xs.low.size());
        for (int x = 0; x < width; x++) {
            int x0 = xs.low[x], x1 = x0 + 1 < plane.cols ? x0 + 1 : x0;
            out[x] = scratch[x0] + (scratch[x1] - scratch[x0]) * xs.weight[x];
        }
    }

  private:
    struct Axis {
        std::vector<int> low;
        std::vector<float> weight; // of low + 1
        Axis(int full, int small) : low(full), weight(full) {
            double ratio = double(small) / full;
            for (int i = 0; i < full; i++) {
                double x = (i + 0.5) * ratio - 0.5;
                x = x < 0 ? 0 : (x > small - 1 ? small - 1 : x);
                int x0 = int(x);
                if (x0 > small - 2) x0 = small > 1 ? small - 2 : 0;
                low[i] = x0;
                weight[i] = small > 1 ? float(x - x0) : 0.0f;
            }
        }
    };
    Axis xs, ys;
};

} // namespace imaging
