// Matte refinement (guided filter at full resolution) and the classical fallback segmenter.
#include <algorithm>
#include <vector>
#include <opencv2/imgproc.hpp>

#include "bridge_internal.hpp"

using namespace imaging;

namespace {

cv::Mat boxMean(const cv::Mat &m, int r) {
    cv::Mat out;
    cv::boxFilter(m, out, CV_32F, {2 * r + 1, 2 * r + 1}, {-1, -1}, true, cv::BORDER_REPLICATE);
    return out;
}

/// The matte's prior from the model's map: upsampled, then steepened around 0.75. The map is soft
/// over ~3 px of the model's grid; the steepening gives the guided filter a crisp cut and lets it
/// take the edge detail from the photo. The cut sits above 0.5: faint saliency (overlay text, the
/// inside of a headphone band) is what the model is least sure of and is usually background.
cv::Mat prior(const cv::Mat &map, cv::Size size) {
    cv::Mat out;
    cv::resize(map, out, size, 0, 0, cv::INTER_LINEAR);
    out = (out - 0.75f) * 3.0f + 0.5f;
    cv::min(cv::max(out, 0.0f), 1.0f, out);
    return out;
}

/// He et al.'s guided filter with a grey guide: the linear coefficients (a, b) of q = a I + b,
/// box-averaged, at the guide's resolution. Written in place, plane by plane: at the working size
/// each float plane is ~8 MB and the textbook expression form would hold about fifteen at once.
void guidedCoefficients(const cv::Mat &I, const cv::Mat &p, int r, double eps, cv::Mat &meanA, cv::Mat &meanB) {
    cv::Mat meanI = boxMean(I, r), meanP = boxMean(p, r), scratch, variance, covariance;
    cv::multiply(I, I, scratch);
    variance = boxMean(scratch, r);
    cv::multiply(I, p, scratch);
    covariance = boxMean(scratch, r);
    cv::multiply(meanI, meanI, scratch);
    cv::subtract(variance, scratch, variance);  // var I
    cv::multiply(meanI, meanP, scratch);
    cv::subtract(covariance, scratch, covariance);  // cov (I, p)
    cv::add(variance, cv::Scalar(eps), variance);
    cv::divide(covariance, variance, covariance);  // a
    cv::multiply(covariance, meanI, scratch);
    cv::subtract(meanP, scratch, meanP);  // b = mean p - a mean I
    meanA = boxMean(covariance, r);
    meanB = boxMean(meanP, r);
}

} // namespace

/// Refines the model's map into the alpha at full resolution. The guided filter's coefficients are
/// computed at a working resolution of at most kWorkingSide on the long side (the "fast guided
/// filter"); only the last step, alpha = a I + b with a and b interpolated, runs at full size, row
/// by row, so a 16 MP photo needs no full-size float plane.
extern "C" int CImagingBridge_refineMatte(const uint8_t *rgb, int width, int height,
                                          const float *coarse, int side, uint8_t *alpha,
                                          char *error, size_t errorSize) {
    return guarded("matte refinement", error, errorSize, [&] {
        constexpr int kWorkingSide = 1024;
        cv::Mat image = wrap(rgb, width, height, 3);
        double scale = workingScale(width, height, kWorkingSide);
        cv::Mat small = image;
        if (scale < 1) cv::resize(image, small, {}, scale, scale, cv::INTER_AREA);
        cv::Mat grey;
        cv::cvtColor(small, grey, cv::COLOR_RGB2GRAY);
        grey.convertTo(grey, CV_32F, 1.0 / 255);
        cv::Mat map(side, side, CV_32F, const_cast<float *>(coarse));
        cv::Mat p = prior(map, grey.size());
        int longSide = std::max(grey.cols, grey.rows);
        int radius = std::max(2, int(std::lround(longSide / 170.0)));
        cv::Mat meanA, meanB;
        guidedCoefficients(grey, p, radius, 1e-3, meanA, meanB);
        // alpha = a I + b at full size, then near-certain values snapped: the background must end
        // up exactly transparent.
        Bilinear enlarge(grey.size(), width, height);
        const float kGrey[3] = {0.299f / 255, 0.587f / 255, 0.114f / 255};
        cv::parallel_for_(cv::Range(0, height), [&](const cv::Range &rows) {
            std::vector<float> scratch(grey.cols), rowA(width), rowB(width);
            for (int y = rows.start; y < rows.end; y++) {
                enlarge.row(meanA, y, scratch.data(), rowA.data());
                enlarge.row(meanB, y, scratch.data(), rowB.data());
                const uint8_t *pixel = image.ptr<uint8_t>(y);
                uint8_t *out = alpha + size_t(y) * width;
                for (int x = 0; x < width; x++) {
                    const uint8_t *c = pixel + 3 * x;
                    float I = kGrey[0] * c[0] + kGrey[1] * c[1] + kGrey[2] * c[2];
                    float q = (rowA[x] * I + rowB[x] - 0.06f) * (1.0f / 0.88f);
                    out[x] = cv::saturate_cast<uint8_t>(q * 255.0f);
                }
            }
        });
        return 0;
    });
}

extern "C" int CImagingBridge_segmentClassical(const uint8_t *rgb, int width, int height, int side,
                                               float *coarse, char *error, size_t errorSize) {
    return guarded("classical segmentation", error, errorSize, [&] {
        cv::Mat small;
        cv::resize(wrap(rgb, width, height, 3), small, {side, side}, 0, 0, cv::INTER_AREA);
        cv::GaussianBlur(small, small, {5, 5}, 1.2);
        cv::Mat lab;
        small.convertTo(lab, CV_32FC3, 1.0 / 255);
        cv::cvtColor(lab, lab, cv::COLOR_RGB2Lab);
        // Background model: per channel a quadratic surface in (x, y) fitted on a border ring,
        // which follows vignettes and gradients.
        int ring = std::max(3, side / 25);
        std::vector<cv::Point> border;
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++)
                if (x < ring || y < ring || x >= side - ring || y >= side - ring)
                    border.push_back({x, y});
        auto terms = [&](double x, double y, float *row) {
            x = x / side - 0.5; y = y / side - 0.5;
            row[0] = 1; row[1] = float(x); row[2] = float(y);
            row[3] = float(x * x); row[4] = float(y * y); row[5] = float(x * y);
        };
        cv::Mat A(int(border.size()), 6, CV_32F), B(int(border.size()), 3, CV_32F);
        for (int i = 0; i < int(border.size()); i++) {
            terms(border[i].x, border[i].y, A.ptr<float>(i));
            cv::Vec3f v = lab.at<cv::Vec3f>(border[i]);
            for (int c = 0; c < 3; c++) B.at<float>(i, c) = v[c];
        }
        cv::Mat coefficients;
        cv::solve(A, B, coefficients, cv::DECOMP_SVD);
        cv::Mat distance(side, side, CV_32F);
        std::vector<float> residuals;
        float row[6];
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++) {
                terms(x, y, row);
                cv::Vec3f v = lab.at<cv::Vec3f>(y, x);
                float d2 = 0, dl = 0;
                for (int c = 0; c < 3; c++) {
                    float model = 0;
                    for (int k = 0; k < 6; k++) model += row[k] * coefficients.at<float>(k, c);
                    float d = v[c] - model;
                    if (c == 0) dl = d; else d2 += d * d;
                }
                // A cast shadow only darkens: count darkening at a third of its weight.
                float luminance = dl < 0 ? dl / 3 : dl;
                distance.at<float>(y, x) = std::sqrt(d2 + luminance * luminance);
                if (x < ring || y < ring || x >= side - ring || y >= side - ring)
                    residuals.push_back(distance.at<float>(y, x));
            }
        std::nth_element(residuals.begin(), residuals.begin() + residuals.size() / 2, residuals.end());
        float noise = residuals[residuals.size() / 2];
        float threshold = std::max(4.0f, 4.0f * noise);
        cv::Mat foreground = distance > threshold;
        cv::Mat kernel = cv::getStructuringElement(cv::MORPH_ELLIPSE, {5, 5});
        cv::morphologyEx(foreground, foreground, cv::MORPH_CLOSE, kernel);
        cv::morphologyEx(foreground, foreground, cv::MORPH_OPEN, kernel);
        // Keep components of a meaningful size; specks are noise or texture.
        cv::Mat labels, stats, centroids;
        int count = cv::connectedComponentsWithStats(foreground, labels, stats, centroids);
        int minArea = side * side / 400;
        cv::Mat target(side, side, CV_32F, coarse);
        target.setTo(0);
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++) {
                int label = labels.at<int>(y, x);
                if (label > 0 && label < count && stats.at<int>(label, cv::CC_STAT_AREA) >= minArea)
                    target.at<float>(y, x) = 1;
            }
        return 0;
    });
}
