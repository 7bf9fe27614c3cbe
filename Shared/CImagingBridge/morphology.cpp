// Morphology helpers for the quality scorer (erosion, distance transform), so Swift code can
// compute the sample metrics exactly as OpenCV defines them.
#include <opencv2/imgproc.hpp>

#include "bridge_internal.hpp"

using namespace imaging;

extern "C" int CImagingBridge_erode(const uint8_t *mask, int width, int height, int ellipse,
                                    int size, int outsideIsForeground, uint8_t *output,
                                    char *error, size_t errorSize) {
    return guarded("erode", error, errorSize, [&] {
        cv::Mat kernel = cv::getStructuringElement(ellipse ? cv::MORPH_ELLIPSE : cv::MORPH_RECT,
                                                   {size, size});
        cv::Mat out = wrap(output, width, height, 1);
        if (outsideIsForeground)
            cv::erode(wrap(mask, width, height, 1), out, kernel, {-1, -1}, 1, cv::BORDER_REPLICATE);
        else
            cv::erode(wrap(mask, width, height, 1), out, kernel, {-1, -1}, 1, cv::BORDER_CONSTANT,
                      cv::Scalar(0));
        return 0;
    });
}

extern "C" int CImagingBridge_distanceTransform(const uint8_t *mask, int width, int height,
                                                float *output, char *error, size_t errorSize) {
    return guarded("distance transform", error, errorSize, [&] {
        cv::Mat out(height, width, CV_32F, output);
        cv::distanceTransform(wrap(mask, width, height, 1), out, cv::DIST_L2, cv::DIST_MASK_PRECISE,
                              CV_32F);
        return 0;
    });
}
