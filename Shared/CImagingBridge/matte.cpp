// Matte refinement (guided filter at full resolution) and the classical fallback segmenter.
#include <algorithm>
#include <opencv2/imgproc.hpp>

#include "bridge_internal.hpp"

using namespace imaging;

namespace {

cv::Mat boxMean(const cv::Mat &m, int r) {
    cv::Mat out;
    cv::boxFilter(m, out, CV_32F, {2 * r + 1, 2 * r + 1}, {-1, -1}, true, cv::BORDER_REPLICATE);
    return out;
}

/// He et al.'s guided filter with a grey guide, coefficients computed at 1/`s` scale and applied
/// at full resolution ("fast guided filter"), so a 16 MP image needs only two full-size planes.
cv::Mat guidedFilter(const cv::Mat &guide, const cv::Mat &source, int radius, double eps, int s) {
    cv::Mat I = guide, p = source;
    if (s > 1) {
        cv::resize(guide, I, {}, 1.0 / s, 1.0 / s, cv::INTER_AREA);
        cv::resize(source, p, I.size(), 0, 0, cv::INTER_AREA);
    }
    int r = std::max(1, radius / s);
    cv::Mat meanI = boxMean(I, r), meanP = boxMean(p, r);
    cv::Mat corrI = boxMean(I.mul(I), r), corrIP = boxMean(I.mul(p), r);
    cv::Mat varI = corrI - meanI.mul(meanI), covIP = corrIP - meanI.mul(meanP);
    cv::Mat a = covIP / (varI + eps);
    cv::Mat b = meanP - a.mul(meanI);
    cv::Mat meanA = boxMean(a, r), meanB = boxMean(b, r);
    if (s > 1) {
        cv::resize(meanA, a, guide.size(), 0, 0, cv::INTER_LINEAR);
        cv::resize(meanB, b, guide.size(), 0, 0, cv::INTER_LINEAR);
        meanA = a;
        meanB = b;
    }
    return meanA.mul(guide) + meanB;
}

} // namespace

extern "C" int CImagingBridge_refineMatte(const uint8_t *rgb, int width, int height,
                                          const float *coarse, int side, uint8_t *alpha,
                                          char *error, size_t errorSize) {
    return guarded("matte refinement", error, errorSize, [&] {
        cv::Mat image = wrap(rgb, width, height, 3);
        cv::Mat grey;
        cv::cvtColor(image, grey, cv::COLOR_RGB2GRAY);
        grey.convertTo(grey, CV_32F, 1.0 / 255);
        cv::Mat map(side, side, CV_32F, const_cast<float *>(coarse));
        cv::Mat prior;
        cv::resize(map, prior, grey.size(), 0, 0, cv::INTER_LINEAR);
        // The upsampled map is soft over ~3 px of the model's grid; steepen it around 0.5 so the
        // guided filter starts from a crisp cut and takes the edge detail from the photo.
        // The cut sits above 0.5: faint saliency (overlay text, the inside of a headphone band) is
        // what the model is least sure of and is usually background.
        prior = (prior - 0.75f) * 3.0f + 0.5f;
        cv::min(cv::max(prior, 0.0f), 1.0f, prior);
        int longSide = std::max(width, height);
        int radius = std::max(2, int(std::lround(longSide / 170.0)));
        int subsample = std::max(1, longSide / 1400);
        cv::Mat refined = guidedFilter(grey, prior, radius, 1e-3, subsample);
        // Snap near-certain values: the background must end up exactly transparent.
        cv::Mat out = wrap(alpha, width, height, 1);
        refined = (refined - 0.06f) * (1.0f / 0.88f);
        refined.convertTo(out, CV_8U, 255.0);
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
