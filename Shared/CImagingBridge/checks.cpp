// Test hooks for the bridge's internal helpers (bridge_internal.hpp), called from ImagingTests.
#include <opencv2/imgproc.hpp>
#include <random>

#include "bridge_internal.hpp"

using namespace imaging;

/// Filters a random image whole and through `striped` (kind 0: 8-bit median, 1: float box mean,
/// 2: float Gaussian) and reports the largest difference and the largest value. The float images
/// span nine orders of magnitude, so running sums are inexact.
extern "C" int CImagingBridge_stripedFilterCheck(int width, int height, int kind, int size, double *maxDifference,
                                                double *maxValue, char *error, size_t errorSize) {
    return guarded("striped filter check", error, errorSize, [&] {
        std::mt19937 random(uint32_t(width * 131 + height * 7 + kind));
        std::normal_distribution<float> normal(0.f, 5.f);
        cv::Mat image(height, width, kind == 0 ? CV_8U : CV_32F);
        if (kind == 0) for (int i = 0; i < int(image.total()); i++) image.data[i] = uint8_t(random() % 256);
        else for (int i = 0; i < int(image.total()); i++) image.ptr<float>()[i] = std::exp(normal(random) / 1.2f);
        auto filter = [&](const cv::Mat &in, cv::Mat &out) {
            switch (kind) {
            case 0: cv::medianBlur(in, out, size); break;
            case 1: cv::boxFilter(in, out, CV_32F, {size, size}, {-1, -1}, true, cv::BORDER_REPLICATE); break;
            default: cv::GaussianBlur(in, out, {0, 0}, size / 4.0); break;
            }
        };
        cv::Mat whole, parts;
        filter(image, whole);
        if (kind == 2) parts = gaussianStriped(image, size / 4.0);
        else parts = striped(image, size / 2, image.type(), filter);
        *maxDifference = cv::norm(whole, parts, cv::NORM_INF);
        *maxValue = cv::norm(whole, cv::NORM_INF);
        return 0;
    });
}
