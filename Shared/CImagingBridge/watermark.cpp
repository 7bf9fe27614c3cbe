// Tiled watermark removal by inversion. A tiled overlay repeats on a lattice, so:
//  1. the autocorrelation of a high-pass copy of the image has peaks at the lattice vectors;
//  2. at lattice-equivalent pixels the overlay's opacity is the same while the photo differs, so
//     the median over the tile copies of a per-pixel opacity estimate is the overlay's opacity;
//  3. the blend I = a c + (1 - a) J is inverted: J = (I - a c) / (1 - a).
// Inversion keeps product text intact where inpainting would smear it.
#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <vector>
#include <cstdlib>
#include <string>

#include "bridge_internal.hpp"

using namespace imaging;

namespace {

struct Peak {
    cv::Point2f offset;
    float strength = 0;
};

/// Normalised autocorrelation (1 at the origin), centred, via the Wiener-Khinchin theorem.
cv::Mat autocorrelation(const cv::Mat &signal) {
    cv::Mat padded;
    int rows = cv::getOptimalDFTSize(signal.rows), cols = cv::getOptimalDFTSize(signal.cols);
    cv::copyMakeBorder(signal, padded, 0, rows - signal.rows, 0, cols - signal.cols,
                       cv::BORDER_CONSTANT, 0);
    cv::Mat spectrum, power, correlation;
    cv::dft(padded, spectrum, cv::DFT_COMPLEX_OUTPUT);
    cv::mulSpectrums(spectrum, spectrum, power, 0, true);
    cv::dft(power, correlation, cv::DFT_INVERSE | cv::DFT_REAL_OUTPUT | cv::DFT_SCALE);
    float origin = correlation.at<float>(0, 0);
    if (origin <= 0) return {};
    correlation /= origin;
    // Shift so offset (0, 0) sits at the centre.
    int cx = cols / 2, cy = rows / 2;
    cv::Mat shifted(correlation.size(), correlation.type());
    correlation(cv::Rect(0, 0, cols - cx, rows - cy)).copyTo(shifted(cv::Rect(cx, cy, cols - cx, rows - cy)));
    correlation(cv::Rect(cols - cx, 0, cx, rows - cy)).copyTo(shifted(cv::Rect(0, cy, cx, rows - cy)));
    correlation(cv::Rect(0, rows - cy, cols - cx, cy)).copyTo(shifted(cv::Rect(cx, 0, cols - cx, cy)));
    correlation(cv::Rect(cols - cx, rows - cy, cx, cy)).copyTo(shifted(cv::Rect(0, 0, cx, cy)));
    return shifted;
}

/// The strongest local maximum of the autocorrelation in a ring of offsets, refined to
/// sub-pixel precision; `notAlong` excludes peaks collinear with an earlier one.
Peak strongestPeak(const cv::Mat &correlation, float minRadius, float maxRadius,
                   const Peak *notAlong) {
    Peak best;
    int cx = correlation.cols / 2, cy = correlation.rows / 2;
    for (int y = 1; y < correlation.rows - 1; y++) {
        const float *row = correlation.ptr<float>(y);
        for (int x = 1; x < correlation.cols - 1; x++) {
            float dx = float(x - cx), dy = float(y - cy);
            // Half-plane: +v and -v are the same lattice vector.
            if (dy < 0 || (dy == 0 && dx <= 0)) continue;
            float r = std::hypot(dx, dy);
            if (r < minRadius || r > maxRadius || row[x] <= best.strength) continue;
            if (notAlong) {
                cv::Point2f a = notAlong->offset;
                float sine = std::abs(a.x * dy - a.y * dx) / (std::hypot(a.x, a.y) * r);
                if (sine < 0.35f) continue;
            }
            bool isMax = true;
            for (int j = -1; j <= 1 && isMax; j++)
                for (int i = -1; i <= 1; i++)
                    if ((i || j) && correlation.at<float>(y + j, x + i) > row[x]) { isMax = false; break; }
            if (!isMax) continue;
            auto vertex = [](float l, float c, float r) {
                float d = l - 2 * c + r;
                return std::abs(d) < 1e-6f ? 0.0f : std::clamp(0.5f * (l - r) / d, -0.5f, 0.5f);
            };
            best.strength = row[x];
            best.offset = {dx + vertex(row[x - 1], row[x], row[x + 1]),
                           dy + vertex(correlation.at<float>(y - 1, x), row[x],
                                       correlation.at<float>(y + 1, x))};
        }
    }
    return best;
}

} // namespace

extern "C" int CImagingBridge_removeTiledWatermark(uint8_t *rgb, int width, int height, int *found,
                                                   char *error, size_t errorSize) {
    *found = 0;
    return guarded("watermark removal", error, errorSize, [&] {
        // The detector still mistakes regular product texture (label text lines) for a tiled
        // overlay and misses some real ones, so it only runs when explicitly enabled.
        const char *enabled = std::getenv("CYCLORAMA_EXPERIMENTAL_WATERMARK");
        if (!enabled || std::string(enabled) != "1") return 0;
        // Detection needs several tile copies and costs O(n log n); very large photos are skipped.
        if (std::min(width, height) < 128 || std::max(width, height) > 2560) return 0;
        cv::Mat image = wrap(rgb, width, height, 3);
        cv::Mat grey;
        cv::cvtColor(image, grey, cv::COLOR_RGB2GRAY);
        grey.convertTo(grey, CV_32F);
        cv::Mat smooth, highPass;
        cv::GaussianBlur(grey, smooth, {0, 0}, 4);
        highPass = grey - smooth;
        cv::Scalar mean = cv::mean(highPass);
        highPass -= mean[0];
        cv::Mat correlation = autocorrelation(highPass);
        if (correlation.empty()) return 0;
        float shortSide = float(std::min(width, height));
        Peak first = strongestPeak(correlation, shortSide * 0.1f, shortSide * 0.45f, nullptr);
        if (first.strength < 0.12f) return 0;
        Peak second = strongestPeak(correlation, shortSide * 0.1f, shortSide * 0.45f, &first);
        if (second.strength < 0.08f) return 0;

        // The overlay brightens (light text) or darkens; its colour is taken as white or black.
        cv::Mat local;
        cv::Mat greyU8;
        cv::cvtColor(image, greyU8, cv::COLOR_RGB2GRAY);
        cv::medianBlur(greyU8, local, 11);
        local.convertTo(local, CV_32F);
        cv::Mat difference = grey - local;
        double positive = cv::sum(cv::max(difference, 0))[0], negative = -cv::sum(cv::min(difference, 0))[0];
        float colour = positive >= negative ? 255.0f : 0.0f;

        // Per-pixel opacity sample a = (I - J) / (c - J) with J the local median background.
        cv::Mat sample(height, width, CV_32F);
        for (int y = 0; y < height; y++) {
            const float *I = grey.ptr<float>(y), *J = local.ptr<float>(y);
            float *out = sample.ptr<float>(y);
            for (int x = 0; x < width; x++) {
                float span = colour - J[x];
                out[x] = std::abs(span) < 12 ? NAN : (I[x] - J[x]) / span;
            }
        }
        // Median over the tile copies: the photo varies between copies, the overlay does not.
        cv::Mat opacity(height, width, CV_32F, cv::Scalar(0));
        const int reach = 4;
        std::vector<float> values;
        values.reserve((2 * reach + 1) * (2 * reach + 1));
        for (int y = 0; y < height; y++) {
            float *out = opacity.ptr<float>(y);
            for (int x = 0; x < width; x++) {
                values.clear();
                for (int j = -reach; j <= reach; j++)
                    for (int i = -reach; i <= reach; i++) {
                        int sx = int(std::lround(x + i * first.offset.x + j * second.offset.x));
                        int sy = int(std::lround(y + i * first.offset.y + j * second.offset.y));
                        if (sx < 0 || sy < 0 || sx >= width || sy >= height) continue;
                        float v = sample.at<float>(sy, sx);
                        if (!std::isnan(v)) values.push_back(v);
                    }
                if (values.size() < 5) continue;
                auto middle = values.begin() + values.size() / 2;
                std::nth_element(values.begin(), middle, values.end());
                out[x] = std::clamp(*middle, 0.0f, 0.85f);
            }
        }
        // Below a few percent the estimate is noise; leave those pixels untouched.
        cv::Mat faint = opacity < 0.03f;
        opacity.setTo(0, faint);
        double strongest = 0;
        cv::minMaxLoc(opacity, nullptr, &strongest);
        if (strongest < 0.08) return 0;
        for (int y = 0; y < height; y++) {
            const float *a = opacity.ptr<float>(y);
            uint8_t *p = image.ptr<uint8_t>(y);
            for (int x = 0; x < width; x++) {
                if (a[x] <= 0) continue;
                for (int c = 0; c < 3; c++)
                    p[3 * x + c] = cv::saturate_cast<uint8_t>((p[3 * x + c] - a[x] * colour) / (1 - a[x]));
            }
        }
        *found = 1;
        return 0;
    });
}
