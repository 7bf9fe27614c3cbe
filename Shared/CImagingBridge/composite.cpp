// Compositing with edge colour decontamination.
#include <algorithm>
#include <opencv2/imgproc.hpp>

#include "bridge_internal.hpp"

using namespace imaging;

namespace {

/// Mean colour of the pixels selected by `mask` around each pixel (normalised convolution), one
/// float plane per channel, and the share of selected pixels in the window (`support`).
struct LocalMean {
    cv::Mat channel[3];
    cv::Mat support;

    LocalMean(const cv::Mat &colour, const cv::Mat &mask, int radius) {
        cv::Size window{2 * radius + 1, 2 * radius + 1};
        cv::Mat weight, plane;
        mask.convertTo(weight, CV_32F, 1.0 / 255);
        cv::boxFilter(weight, support, CV_32F, window, {-1, -1}, true, cv::BORDER_REPLICATE);
        cv::Mat denominator = cv::max(support, 1e-6f);
        for (int c = 0; c < 3; c++) {
            cv::extractChannel(colour, plane, c);
            plane.convertTo(plane, CV_32F);
            cv::multiply(plane, weight, plane);
            cv::boxFilter(plane, channel[c], CV_32F, window, {-1, -1}, true, cv::BORDER_REPLICATE);
            cv::divide(channel[c], denominator, channel[c]);
        }
    }

    cv::Vec3f at(int y, int x) const {
        return {channel[0].at<float>(y, x), channel[1].at<float>(y, x), channel[2].at<float>(y, x)};
    }
};

/// Edge pixels are I = F a + B (1 - a): estimate the old background B from nearby clear
/// background and the product colour F from nearby solid product, then solve for F so the old
/// background does not bleed into the new one. Writes F into `colours` (rows [y0, y1) of the
/// image, `box` in image coordinates) for the partial-alpha pixels of `box`; `context` is the
/// image area the local means may read.
void decontaminate(const cv::Mat &image, const cv::Mat &matte, cv::Rect box, cv::Rect context, int radius,
                   int y0, cv::Mat &colours) {
    cv::Mat colour = image(context);
    // Normalised windows: support is the share of the window, so "more than half of a window's
    // worth" below is support > 0.5 / window area.
    LocalMean oldBackground(colour, matte(context) == 0, radius);
    LocalMean product(colour, matte(context) >= 250, radius);
    const float enough = 0.5f / float((2 * radius + 1) * (2 * radius + 1));
    for (int y = box.y; y < box.y + box.height; y++) {
        const uint8_t *m = matte.ptr<uint8_t>(y);
        int cy = y - context.y;
        cv::Vec3b *out = colours.ptr<cv::Vec3b>(y - y0);
        for (int x = box.x; x < box.x + box.width; x++) {
            if (m[x] == 0 || m[x] == 255) continue;
            int cx = x - context.x;
            float av = m[x] / 255.0f;
            cv::Vec3b pixel = colour.at<cv::Vec3b>(cy, cx);
            cv::Vec3f I(pixel[0], pixel[1], pixel[2]);
            cv::Vec3f F = I;
            if (oldBackground.support.at<float>(cy, cx) > enough) {
                cv::Vec3f Bg = oldBackground.at(cy, cx);
                F = (I - Bg * (1 - av)) / std::max(av, 0.05f);
            }
            // Where alpha is small the solution is noisy: lean on the nearby product.
            if (product.support.at<float>(cy, cx) > enough && av < 0.4f) {
                float t = std::max(0.0f, (av - 0.1f) / 0.3f);
                F = F * t + product.at(cy, cx) * (1 - t);
            }
            for (int c = 0; c < 3; c++) out[x][c] = cv::saturate_cast<uint8_t>(F[c]);
        }
    }
}

/// Bounding box of the partial-alpha pixels, by a scan (mask expressions would allocate three
/// full-size planes).
cv::Rect partialAlphaBox(const cv::Mat &matte) {
    int x0 = matte.cols, y0 = matte.rows, x1 = -1, y1 = -1;
    for (int y = 0; y < matte.rows; y++) {
        const uint8_t *m = matte.ptr<uint8_t>(y);
        for (int x = 0; x < matte.cols; x++) {
            if (m[x] == 0 || m[x] == 255) continue;
            x0 = std::min(x0, x), x1 = std::max(x1, x);
            y0 = std::min(y0, y), y1 = y;
        }
    }
    return x1 < 0 ? cv::Rect() : cv::Rect(x0, y0, x1 - x0 + 1, y1 - y0 + 1);
}

} // namespace

/// Composites in strips of rows, so the float planes of the edge decontamination cover one strip
/// (plus the local means' reach), never the whole photo.
extern "C" int CImagingBridge_composite(const uint8_t *rgb, const uint8_t *alpha,
                                        const uint8_t *shadow, int width, int height,
                                        int transparent, uint8_t red, uint8_t green, uint8_t blue,
                                        uint8_t *output, char *error, size_t errorSize) {
    return guarded("composite", error, errorSize, [&] {
        constexpr int kStripRows = 64;
        cv::Mat image = wrap(rgb, width, height, 3), matte = wrap(alpha, width, height, 1);
        cv::Rect edgeBox = partialAlphaBox(matte);
        // 1 % of the long side, but at most a quarter of the short one (a long thin photo would
        // otherwise make every strip's context the whole image); at least 4 px.
        int radius = std::max(4, std::min(std::max(width, height) / 100, std::min(width, height) / 4));
        const float colourOf[3] = {float(red), float(green), float(blue)};
        for (int y0 = 0; y0 < height; y0 += kStripRows) {
            int y1 = std::min(height, y0 + kStripRows);
            cv::Mat colours = image.rowRange(y0, y1).clone();
            cv::Rect box = edgeBox & cv::Rect(0, y0, width, y1 - y0);
            if (box.area() > 0) {
                // The local means read `radius` pixels around each pixel of the box.
                cv::Rect context = (box + cv::Size(2 * radius + 2, 2 * radius + 2)) - cv::Point(radius + 1, radius + 1);
                context &= cv::Rect(0, 0, width, height);
                decontaminate(image, matte, box, context, radius, y0, colours);
            }
            for (int y = y0; y < y1; y++) {
                const cv::Vec3b *f = colours.ptr<cv::Vec3b>(y - y0);
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
        }
        return 0;
    });
}
