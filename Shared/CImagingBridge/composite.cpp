// Compositing with edge colour decontamination.
#include <algorithm>
#include <opencv2/imgproc.hpp>

#include "bridge_internal.hpp"

using namespace imaging;

namespace {

/// Mean colour of the pixels selected by `weight` around each pixel (normalised convolution).
cv::Mat localMean(const cv::Mat &colour, const cv::Mat &weight, int radius, cv::Mat &support) {
    cv::Size window{2 * radius + 1, 2 * radius + 1};
    cv::Mat weighted;
    cv::Mat weight3;
    cv::merge(std::vector<cv::Mat>{weight, weight, weight}, weight3);
    cv::multiply(colour, weight3, weighted);
    cv::boxFilter(weighted, weighted, CV_32F, window, {-1, -1}, false, cv::BORDER_REPLICATE);
    cv::boxFilter(weight, support, CV_32F, window, {-1, -1}, false, cv::BORDER_REPLICATE);
    cv::Mat denominator = cv::max(support, 1e-3f);
    cv::merge(std::vector<cv::Mat>{denominator, denominator, denominator}, weight3);
    cv::divide(weighted, weight3, weighted);
    return weighted;
}

} // namespace

extern "C" int CImagingBridge_composite(const uint8_t *rgb, const uint8_t *alpha,
                                        const uint8_t *shadow, int width, int height,
                                        int transparent, uint8_t red, uint8_t green, uint8_t blue,
                                        uint8_t *output, char *error, size_t errorSize) {
    return guarded("composite", error, errorSize, [&] {
        cv::Mat image = wrap(rgb, width, height, 3), matte = wrap(alpha, width, height, 1);
        // Edge pixels are I = F a + B (1 - a): estimate the old background B from nearby clear
        // background and the product colour F from nearby solid product, then solve for F so the
        // old background does not bleed into the new one. Only the partial-alpha band is touched.
        cv::Mat edge = (matte > 0) & (matte < 255);
        cv::Rect box = cv::boundingRect(edge);
        cv::Mat decontaminated = image.clone();
        if (box.area() > 0) {
            int radius = std::max(4, std::max(width, height) / 100);
            box = (box + cv::Size(4 * radius, 4 * radius)) - cv::Point(2 * radius, 2 * radius);
            box &= cv::Rect(0, 0, width, height);
            cv::Mat colour;
            image(box).convertTo(colour, CV_32FC3);
            cv::Mat a;
            matte(box).convertTo(a, CV_32F, 1.0 / 255);
            cv::Mat clearBackground, solidProduct, backgroundSupport, productSupport;
            cv::Mat(matte(box) == 0).convertTo(clearBackground, CV_32F, 1.0 / 255);
            cv::Mat(matte(box) >= 250).convertTo(solidProduct, CV_32F, 1.0 / 255);
            cv::Mat oldBackground = localMean(colour, clearBackground, radius, backgroundSupport);
            cv::Mat product = localMean(colour, solidProduct, radius, productSupport);
            cv::Mat region = decontaminated(box);
            for (int y = 0; y < box.height; y++) {
                const uint8_t *m = matte(box).ptr<uint8_t>(y);
                for (int x = 0; x < box.width; x++) {
                    if (m[x] == 0 || m[x] == 255) continue;
                    float av = a.at<float>(y, x);
                    cv::Vec3f I = colour.at<cv::Vec3f>(y, x);
                    cv::Vec3f F = I;
                    if (backgroundSupport.at<float>(y, x) > 0.5f) {
                        cv::Vec3f Bg = oldBackground.at<cv::Vec3f>(y, x);
                        F = (I - Bg * (1 - av)) / std::max(av, 0.05f);
                    }
                    // Where alpha is small the solution is noisy: lean on the nearby product.
                    if (productSupport.at<float>(y, x) > 0.5f && av < 0.4f) {
                        float t = std::max(0.0f, (av - 0.1f) / 0.3f);
                        F = F * t + product.at<cv::Vec3f>(y, x) * (1 - t);
                    }
                    cv::Vec3b &out = region.at<cv::Vec3b>(y, x);
                    for (int c = 0; c < 3; c++) out[c] = cv::saturate_cast<uint8_t>(F[c]);
                }
            }
        }
        const float colourOf[3] = {float(red), float(green), float(blue)};
        for (int y = 0; y < height; y++) {
            const cv::Vec3b *f = decontaminated.ptr<cv::Vec3b>(y);
            const uint8_t *m = matte.ptr<uint8_t>(y);
            const uint8_t *s = shadow ? shadow + size_t(y) * width : nullptr;
            uint8_t *o = output + size_t(y) * width * (transparent ? 4 : 3);
            for (int x = 0; x < width; x++) {
                float a = m[x] / 255.0f, dark = s ? s[x] / 255.0f : 0.0f;
                if (transparent) {
                    // The shadow becomes black at opacity `dark`, under the product.
                    float coverage = a + dark * (1 - a);
                    for (int c = 0; c < 3; c++)
                        o[4 * x + c] = coverage > 0
                            ? cv::saturate_cast<uint8_t>(f[x][c] * a / coverage) : 0;
                    o[4 * x + 3] = cv::saturate_cast<uint8_t>(coverage * 255.0f);
                } else {
                    for (int c = 0; c < 3; c++) {
                        float background = colourOf[c] * (1 - dark);
                        o[3 * x + c] = m[x] == 255 ? f[x][c]
                            : cv::saturate_cast<uint8_t>(f[x][c] * a + background * (1 - a));
                    }
                }
            }
        }
        return 0;
    });
}
