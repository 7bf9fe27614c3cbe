// Shadow presets rendered from the product's alpha. Everything is drawn at a working resolution
// (shadows are smooth) on a padded canvas so no blur is clipped, then upsampled.
#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "bridge_internal.hpp"

using namespace imaging;

namespace {

struct ShadowStyle {
    float contact;      // opacity of the contact shadow right under the base
    float pad;          // opacity of the ambient pad
    float cast;         // opacity of the cast shadow at the base (0: none)
    float castLength;   // how far back the cast shadow reaches, as a fraction of canvas height
    float shear;        // sideways lean of the cast shadow per unit of height
    float sharpness;    // 1 = hard-edged, 0 = very soft
};

ShadowStyle style(CImagingBridgeShadow preset) {
    switch (preset) {
    case CImagingBridgeShadowMinimal: return {0.35f, 0.10f, 0.0f, 0.0f, 0.0f, 0.5f};
    case CImagingBridgeShadowSoft: return {0.45f, 0.16f, 0.22f, 0.035f, 0.45f, 0.4f};
    case CImagingBridgeShadowDramatic: return {0.60f, 0.22f, 0.45f, 0.09f, 0.8f, 0.8f};
    default: return {0, 0, 0, 0, 0, 0};
    }
}

/// Gaussian blur of a zero-bordered float map. Wide blurs run on a map shrunk by f (area) and are
/// enlarged back (linear): the kernel is then ~f² times cheaper, and a blur at least ~2.5 working
/// pixels wide is smooth enough that the round trip changes it by a fraction of a level. The two
/// resamplings widen it by about f/2, which the smaller sigma makes up for.
cv::Mat blurred(const cv::Mat &m, double sigma) {
    if (sigma < 0.3) return m.clone();
    cv::Mat out;
    const int factor = std::min(int(sigma / 2.5), std::min(m.cols, m.rows) / 8);
    if (factor < 2) {
        cv::GaussianBlur(m, out, {0, 0}, sigma, sigma, cv::BORDER_CONSTANT);
        return out;
    }
    cv::Mat small;
    cv::resize(m, small, {(m.cols + factor - 1) / factor, (m.rows + factor - 1) / factor}, 0, 0, cv::INTER_AREA);
    const double reduced = std::sqrt(std::max(sigma * sigma - factor * factor / 4.0, sigma * sigma / 4)) / factor;
    cv::GaussianBlur(small, small, {0, 0}, reduced, reduced, cv::BORDER_CONSTANT);
    cv::resize(small, out, m.size(), 0, 0, cv::INTER_LINEAR);
    return out;
}

} // namespace

extern "C" int CImagingBridge_renderShadow(const uint8_t *alpha, int width, int height,
                                           CImagingBridgeShadow preset, uint8_t *darkening,
                                           char *error, size_t errorSize) {
    return guarded("shadow", error, errorSize, [&] {
        cv::Mat out = wrap(darkening, width, height, 1);
        out.setTo(0);
        ShadowStyle s = style(preset);
        if (s.contact == 0 && s.pad == 0 && s.cast == 0) return 0;
        double scale = workingScale(width, height, 512);
        cv::Mat mask = shrunk(wrap(alpha, width, height, 1), scale);
        mask.convertTo(mask, CV_32F, 1.0 / 255);
        int w = mask.cols, h = mask.rows;
        cv::Mat solid = mask >= 0.5f;
        if (cv::countNonZero(solid) == 0) return 0;
        cv::Rect box = cv::boundingRect(solid);
        int base = box.y + box.height - 1;
        float productHeight = float(box.height), canvas = float(std::max(w, h));
        // Pad generously so blurs and the cast shadow are never cut by the canvas edge.
        int pad = int(std::ceil(canvas * 0.25f));
        cv::Mat padded;
        cv::copyMakeBorder(mask, padded, pad, pad, pad, pad, cv::BORDER_CONSTANT, 0);
        int baseP = base + pad;
        cv::Mat shade = cv::Mat::zeros(padded.size(), CV_32F);

        // Contact: the product's footprint (its lowest few percent) pressed onto the floor line.
        int footRows = std::max(2, int(productHeight * 0.04f));
        cv::Mat footprint = cv::Mat::zeros(padded.size(), CV_32F);
        padded.rowRange(baseP - footRows + 1, baseP + 1).copyTo(footprint.rowRange(baseP - footRows + 1, baseP + 1));
        cv::Mat contact = blurred(footprint, std::max(1.0f, canvas * 0.004f));
        shade = cv::max(shade, contact * (s.contact / std::max(1e-3, cv::norm(contact, cv::NORM_INF))));

        // Ambient pad: a flat ellipse under the product's footprint.
        cv::Mat pad_ = cv::Mat::zeros(padded.size(), CV_32F);
        cv::Point centre(box.x + pad + box.width / 2, baseP);
        cv::ellipse(pad_, centre, {int(box.width * 0.52f), std::max(2, int(box.width * 0.05f))}, 0, 0,
                    360, cv::Scalar(1), cv::FILLED);
        pad_ = blurred(pad_, canvas * 0.018f);
        shade = shade + pad_ * s.pad;

        if (s.cast > 0) {
            // Project the silhouette onto the floor behind the product: a point at height t above
            // the base lands t * squash higher in the picture and t * shear to the side.
            float squash = std::min(0.35f, s.castLength * canvas / std::max(1.0f, productHeight));
            cv::Matx23f projection(1, s.shear, -s.shear * baseP, 0, squash, (1 - squash) * baseP);
            cv::Mat projected;
            cv::warpAffine(padded, projected, projection, padded.size(), cv::INTER_LINEAR,
                           cv::BORDER_CONSTANT, 0);
            // Blur grows and opacity falls with the distance from the base.
            float reach = std::max(1.0f, squash * productHeight);
            double nearSigma = canvas * 0.004f / std::max(0.2f, s.sharpness);
            double farSigma = nearSigma * (s.sharpness > 0.6f ? 3 : 6);
            cv::Mat nearShadow = blurred(projected, nearSigma), farShadow = blurred(projected, farSigma);
            for (int y = 0; y < shade.rows; y++) {
                float t = std::clamp((baseP - y) / reach, 0.0f, 1.0f);
                float falloff = s.cast * std::pow(1 - t, 2.0f);
                const float *n = nearShadow.ptr<float>(y), *f = farShadow.ptr<float>(y);
                float *o = shade.ptr<float>(y);
                for (int x = 0; x < shade.cols; x++)
                    o[x] = std::max(o[x], falloff * (n[x] * (1 - t) + f[x] * t));
            }
        }
        cv::Mat cropped = shade(cv::Rect(pad, pad, w, h)).clone();
        cv::min(cropped, 0.9f, cropped);
        // Fade to nothing in a thin band at the canvas edge instead of a hard cut.
        float fade = std::max(2.0f, canvas * 0.03f);
        for (int y = 0; y < h; y++) {
            float *row = cropped.ptr<float>(y);
            float fy = std::min({1.0f, (y + 0.5f) / fade, (h - y - 0.5f) / fade});
            for (int x = 0; x < w; x++) {
                float fx = std::min({1.0f, (x + 0.5f) / fade, (w - x - 0.5f) / fade});
                float f = std::min(fx, fy);
                row[x] *= f * f * (3 - 2 * f);
            }
        }
        // Quantise at the working size and enlarge the 8-bit map straight into the output: a
        // full-size float plane would cost 64 MB for a 16 MP photo.
        cv::Mat small;
        cropped.convertTo(small, CV_8U, 255.0);
        cv::resize(small, out, {width, height}, 0, 0, cv::INTER_LINEAR);
        return 0;
    });
}
