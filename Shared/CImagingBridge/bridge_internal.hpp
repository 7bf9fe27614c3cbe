// Helpers shared by the OpenCV half of the bridge (C++ only; not part of the public header).
#pragma once
#include <opencv2/core.hpp>
#include <cstdarg>
#include <cstdio>
#include <exception>

#include "CImagingBridge.h"

namespace imaging {

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

} // namespace imaging
