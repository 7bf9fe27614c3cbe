// Tiled watermark removal by inversion. A tiled overlay (text or a logo repeated over the whole
// photo, semi-transparent, white or a dark grey) repeats on a lattice, so:
//  1. Detection: the autocorrelation of the image's thin bright (or dark) strokes, the top-hat,
//     has peaks at the lattice vectors. A lattice is two non-collinear peaks v1, v2 that stand out
//     from their surroundings and whose sum or difference is a peak too (edges and label text make
//     ridges and lone peaks, not lattices).
//  2. Estimation: every pixel maps to a texel of the lattice's cell; all pixels of one texel carry
//     the same overlay opacity a over different photo content J. With J estimated from the image
//     with the current overlay removed (a median that ignores thin strokes), each pixel gives a
//     sample a = (I - J) / (c - J); the texel's opacity is their robust weighted mean (weights
//     favour copies over smooth, contrasting content). Removing, re-estimating J and re-fitting a
//     few times converges, because J gets cleaner each round. A dark overlay's grey level c is
//     fitted between rounds too.
//  3. Gate: after the first round a real overlay's template emerges (opacity > 0.1 on >= 0.5 % of
//     the frame), and the final one is clearly visible (> 0.1 on >= 2 %, >= 0.15 on >= 0.1 %); a
//     lattice found in product texture does not pass, and the photo is left untouched.
//  4. Inversion of the blend I = a c + (1 - a) J per channel: J = (I - a c) / (1 - a), only where
//     the photo shows the template (a periodic pattern in the scene fits a lattice too, but a
//     product in front of it does not carry it). Inversion keeps product text intact where
//     inpainting would smear it.
//  5. Check: both colours are fitted; of those whose inversion makes the lattice fade in the
//     opposite kind of stroke too, the one that leaves least of it is kept, or the photo is left
//     alone.
//  6. Fine fit: the kept template is fitted again at a finer size (the search runs at a short side
//     of 512 px, which blurs thin strokes) and replaces it when it passes the same check.
#include <array>
#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <vector>

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

/// Peak prominence: the autocorrelation minus its mean over a square ring 5-9 px around each
/// offset (two box filters), so ridges (from long straight edges) score low and isolated peaks high.
cv::Mat prominence(const cv::Mat &correlation) {
    cv::Mat outer, inner;
    cv::boxFilter(correlation, outer, CV_32F, {19, 19}, {-1, -1}, false, cv::BORDER_REFLECT);
    cv::boxFilter(correlation, inner, CV_32F, {9, 9}, {-1, -1}, false, cv::BORDER_REFLECT);
    return correlation - (outer - inner) * (1.0 / (19 * 19 - 9 * 9));
}

/// The `count` most prominent local maxima in a ring of offsets (half-plane: v and -v are the
/// same lattice vector).
std::vector<Peak> prominentPeaks(const cv::Mat &score, float minRadius, float maxRadius, size_t count) {
    cv::Mat dilated;
    cv::dilate(score, dilated, cv::Mat::ones(5, 5, CV_8U));
    int cx = score.cols / 2, cy = score.rows / 2;
    std::vector<Peak> peaks;
    for (int y = cy; y < score.rows; y++) {
        const float *row = score.ptr<float>(y), *top = dilated.ptr<float>(y);
        for (int x = 0; x < score.cols; x++) {
            float dx = float(x - cx), dy = float(y - cy);
            if (dy == 0 && dx <= 0) continue;
            float r = std::hypot(dx, dy);
            if (r < minRadius || r > maxRadius || row[x] < top[x] || row[x] <= 0) continue;
            peaks.push_back({{dx, dy}, row[x]});
        }
    }
    std::sort(peaks.begin(), peaks.end(), [](const Peak &a, const Peak &b) { return a.strength > b.strength; });
    if (peaks.size() > count) peaks.resize(count);
    return peaks;
}

/// Prominence near offset v (either sign), 0 outside the map.
float prominenceAt(const cv::Mat &score, cv::Point2f v) {
    if (v.y < 0 || (v.y == 0 && v.x < 0)) v = -v;
    int x = score.cols / 2 + int(std::lround(v.x)), y = score.rows / 2 + int(std::lround(v.y));
    if (x < 1 || y < 1 || x >= score.cols - 1 || y >= score.rows - 1) return 0;
    double best = 0;
    cv::minMaxLoc(score(cv::Rect(x - 1, y - 1, 3, 3)), nullptr, &best);
    return float(best);
}

/// Sub-pixel position of a correlation peak (parabola through the neighbours on each axis).
cv::Point2f refined(const cv::Mat &correlation, cv::Point2f v) {
    int x = correlation.cols / 2 + int(std::lround(v.x)), y = correlation.rows / 2 + int(std::lround(v.y));
    auto vertex = [](float l, float c, float r) {
        float d = l - 2 * c + r;
        return std::abs(d) < 1e-9f ? 0.0f : std::clamp(0.5f * (l - r) / d, -0.5f, 0.5f);
    };
    if (x < 1 || y < 1 || x >= correlation.cols - 1 || y >= correlation.rows - 1) return v;
    const float *row = correlation.ptr<float>(y);
    return {std::round(v.x) + vertex(row[x - 1], row[x], row[x + 1]),
            std::round(v.y) + vertex(correlation.at<float>(y - 1, x), row[x], correlation.at<float>(y + 1, x))};
}

struct Lattice {
    cv::Point2f a, b;
    float score = 0;
};

/// The best lattice among the peaks: two non-collinear vectors whose sum or difference is also a
/// peak, scored by the weakest of the three; reduced to its shortest basis.
Lattice findLattice(const cv::Mat &correlation, float minRadius, float maxRadius) {
    cv::Mat score = prominence(correlation);
    std::vector<Peak> peaks = prominentPeaks(score, minRadius, maxRadius, 8);
    Lattice best;
    for (size_t i = 0; i < peaks.size(); i++)
        for (size_t j = i + 1; j < peaks.size(); j++) {
            cv::Point2f u = peaks[i].offset, v = peaks[j].offset;
            float sine = std::abs(u.x * v.y - u.y * v.x) / (std::hypot(u.x, u.y) * std::hypot(v.x, v.y));
            if (sine < 0.35f) continue;
            float third = std::max(prominenceAt(score, u + v), prominenceAt(score, u - v));
            float value = std::min({peaks[i].strength, peaks[j].strength, third});
            if (value > best.score) best = {u, v, value};
        }
    if (best.score <= 0) return best;
    best.a = refined(correlation, best.a);
    best.b = refined(correlation, best.b);
    // Gauss reduction: the shortest basis gives the most compact cell.
    for (int guard = 0; guard < 16; guard++) {
        if (best.a.dot(best.a) > best.b.dot(best.b)) std::swap(best.a, best.b);
        float m = std::round(best.a.dot(best.b) / best.a.dot(best.a));
        if (m == 0) break;
        best.b -= m * best.a;
    }
    return best;
}

/// How strongly `lattice` repeats in an autocorrelation: the weakest prominence of its two basis
/// vectors and their sum or difference (as `findLattice` scores it), 0 when it does not.
float latticeStrength(const cv::Mat &correlation, const Lattice &lattice) {
    cv::Mat score = prominence(correlation);
    float third = std::max(prominenceAt(score, lattice.a + lattice.b), prominenceAt(score, lattice.a - lattice.b));
    return std::max(0.0f, std::min({prominenceAt(score, lattice.a), prominenceAt(score, lattice.b), third}));
}

/// The kinds of stroke an overlay leaves: thin bright strokes (light overlays) and thin dark ones
/// (dark overlays).
enum StrokeKind { kBright = 0, kDark = 1 };

/// The autocorrelation of a grey image's thin strokes of one kind, clipped so a few strong
/// highlights or printed lines cannot dominate; an empty map for a flat signal.
cv::Mat strokeCorrelation(const cv::Mat &grey, const cv::Mat &kernel, int kind) {
    cv::Mat smoothed;
    cv::morphologyEx(grey, smoothed, kind == kBright ? cv::MORPH_OPEN : cv::MORPH_CLOSE, kernel);
    cv::Mat strokes = kind == kBright ? cv::Mat(grey - smoothed) : cv::Mat(smoothed - grey), signal;
    cv::min(cv::max(strokes, 0.0f), 12.0f, signal);
    signal -= cv::mean(signal)[0];
    return autocorrelation(signal);
}

cv::Mat strokeShape(int strokeKernel) { return cv::getStructuringElement(cv::MORPH_ELLIPSE, {strokeKernel, strokeKernel}); }

/// Both kinds' autocorrelations (``strokeCorrelation``), side by side (OpenCV's DFT and box
/// filters here run on one thread each).
std::array<cv::Mat, 2> strokeCorrelations(const cv::Mat &grey, int strokeKernel) {
    cv::Mat kernel = strokeShape(strokeKernel);
    std::array<cv::Mat, 2> correlations;
    cv::parallel_for_(cv::Range(0, 2), [&](const cv::Range &range) {
        for (int k = range.start; k < range.end; k++) correlations[k] = strokeCorrelation(grey, kernel, k);
    });
    return correlations;
}

/// The photo's value under an overlay of `colour` at opacity `a`: the blend I = a c + (1 - a) J
/// inverted.
inline float unblended(float value, float a, float colour) { return (value - a * colour) / (1 - a); }

/// Texel index of every pixel in the lattice's cell, sampled at about one texel per pixel. Pixels
/// are mapped at their centres: with whole-pixel periods (the sample grids' 56 and 95 px) every
/// pixel's corner sat exactly on a texel boundary, where the last bit of u and v sent it to one
/// texel or its neighbour, so the template came out sharp or smeared with the lattice's last
/// digits (mirrored left to right, dv04's and dv19's overlays were not found, dv10's came out 8 dB
/// worse). Splatting each pixel bilinearly over four texels instead is orientation-proof too, but
/// blurs 1 px strokes: five overlays of the 36 scenes were then missed.
std::vector<int> texels(int width, int height, const Lattice &lattice, int &count) {
    double det = double(lattice.a.x) * lattice.b.y - double(lattice.a.y) * lattice.b.x;
    double i00 = lattice.b.y / det, i01 = -lattice.b.x / det, i10 = -lattice.a.y / det, i11 = lattice.a.x / det;
    int sideA = std::max(1, int(std::lround(std::hypot(lattice.a.x, lattice.a.y))));
    int sideB = std::max(1, int(std::lround(std::hypot(lattice.b.x, lattice.b.y))));
    count = sideA * sideB;
    std::vector<int> index(size_t(width) * height);
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
            const double cx = x + 0.5, cy = y + 0.5;
            double u = i00 * cx + i01 * cy, v = i10 * cx + i11 * cy;
            int tu = std::min(sideA - 1, int((u - std::floor(u)) * sideA));
            int tv = std::min(sideB - 1, int((v - std::floor(v)) * sideB));
            index[size_t(y) * width + x] = tu * sideB + tv;
        }
    return index;
}

/// How much of the frame an opacity map covers: the shares above 0.1 and at least 0.15.
struct Coverage {
    double visible = 0, strong = 0;
};

Coverage coverage(const cv::Mat &opacity) {
    size_t visible = 0, strong = 0;
    for (int y = 0; y < opacity.rows; y++) {
        const float *a = opacity.ptr<float>(y);
        for (int x = 0; x < opacity.cols; x++) visible += a[x] > 0.1f, strong += a[x] >= 0.15f;
    }
    const double n = double(opacity.total());
    return {visible / n, strong / n};
}

/// The gate after the first round: opacity > 0.1 on >= 0.5 % of the frame. Photos without an
/// overlay stay at 0 (every fit on the 36 scenes); the faintest real overlay (dark text at 0.2,
/// first estimated blurred) reaches 0.9 %.
bool emerging(const cv::Mat &opacity) { return coverage(opacity).visible >= 0.005; }

/// The gate on the final template: opacity > 0.1 on >= 2 % of the frame and >= 0.15 on >= 0.1 %
/// (the sample overlays reach 3.3-9 % and 1.1-7 %).
bool clearlyVisible(const cv::Mat &opacity) {
    Coverage c = coverage(opacity);
    return c.visible >= 0.02 && c.strong >= 0.001;
}

/// Per texel: the weighted mean of the samples, with Tukey weights around `centre` (bisquare,
/// scale 0.15) when given. Pixels are summed in eight fixed chunks over OpenCV's threads, each into
/// its own accumulators, then the chunks in order, so the result depends neither on scheduling nor
/// on the thread count.
void texelMeans(const std::vector<float> &sample, const std::vector<float> &weight, const std::vector<int> &texel,
                const float *centre, std::vector<float> &means) {
    const size_t n = sample.size(), texelCount = means.size();
    constexpr int chunks = 8;
    std::vector<std::vector<double>> sums(chunks, std::vector<double>(2 * texelCount, 0.0));
    cv::parallel_for_(cv::Range(0, chunks), [&](const cv::Range &range) {
        for (int chunk = range.start; chunk < range.end; chunk++) {
            double *sum = sums[chunk].data(), *total = sum + texelCount;
            const size_t from = n * chunk / chunks, to = n * (chunk + 1) / chunks;
            for (size_t i = from; i < to; i++) {
                float w = weight[i];
                if (w <= 0) continue;
                if (centre) {
                    float r = (sample[i] - centre[texel[i]]) / 0.15f;
                    float t = std::max(0.0f, 1 - r * r);
                    w *= t * t;
                }
                sum[texel[i]] += double(w) * sample[i];
                total[texel[i]] += w;
            }
        }
    });
    for (size_t t = 0; t < texelCount; t++) {
        double sum = 0, total = 0;
        for (int chunk = 0; chunk < chunks; chunk++) sum += sums[chunk][t], total += sums[chunk][texelCount + t];
        means[t] = total > 1e-9 ? float(sum / total) : 0.0f;
    }
}

/// The grey level c of a dark overlay: least squares of I - J = a (c - J) over the template's
/// pixels (each residual weighted towards smooth content, 1 / (4 + local variance)), bounded to
/// [0, 110]. Dark watermarks
/// are often a dark grey rather than black; inverted as black, a dark product under one comes out
/// brighter than it was (dv13: 39.9 -> 35.5 dB on the product; with the fitted grey 40.9).
float darkOverlayLevel(const cv::Mat &grey, const cv::Mat &background, const cv::Mat &mean, const cv::Mat &meanSquare,
                       const cv::Mat &opacity, float current) {
    double num = 0, den = 0;
    for (int y = 0; y < grey.rows; y++) {
        const float *I = grey.ptr<float>(y), *J = background.ptr<float>(y), *a = opacity.ptr<float>(y);
        const float *m = mean.ptr<float>(y), *m2 = meanSquare.ptr<float>(y);
        for (int x = 0; x < grey.cols; x++) {
            if (a[x] < 0.05f) continue;
            double w = 1.0 / (4 + std::max(0.0f, m2[x] - m[x] * m[x]));
            num += w * a[x] * (I[x] - J[x] + a[x] * J[x]);
            den += w * a[x] * a[x];
        }
    }
    return den > 0 ? std::clamp(float(num / den), 0.0f, 110.0f) : current;
}

/// How `fitOverlay` runs: from nothing (the search at the working size: six rounds, the first one
/// gated, a dark overlay's grey level fitted), or from an earlier fit's template at a finer size
/// (its level kept).
struct FitPlan {
    int rounds = 6;
    const cv::Mat *start = nullptr; // the opacity to start from, at the grey image's size
    bool search = true;             // gate the first round and fit a dark overlay's level
    cv::Size backgroundSize;        // where the median of the smooth background J runs (empty: the
                                    // grey image's size), enlarged from there
};

/// Fits the overlay's opacity per pixel (`opacity`, CV_32F) for `colour` (255 light, 0 dark; a
/// dark overlay's grey level is fitted too and `colour` comes back as it); returns false when no
/// clearly visible overlay emerges.
bool fitOverlay(const cv::Mat &grey, const std::vector<int> &texel, int texelCount, float &colour, int medianSize,
                cv::Mat &opacity, const FitPlan &plan = {}) {
    const int kRounds = plan.rounds, kGateRound = plan.search ? 1 : 0;
    const bool dark = colour < 128 && plan.search;
    const int width = grey.cols, height = grey.rows;
    const size_t n = size_t(width) * height;
    opacity = plan.start ? plan.start->clone() : cv::Mat::zeros(grey.size(), CV_32F);
    cv::Mat clean(grey.size(), CV_32F), clean8, background, mean, meanSquare;
    std::vector<float> sample(n), weight(n);
    std::vector<float> tpl(texelCount), previous(texelCount);
    for (int round = 1; round <= kRounds; round++) {
        // The photo without the current overlay estimate, and its smooth background J. (The
        // per-pixel loops of a round run over the threads: rows are independent.)
        forRows(height, [&](const cv::Range &rows) {
            for (int y = rows.start; y < rows.end; y++) {
                const float *I = grey.ptr<float>(y), *a = opacity.ptr<float>(y);
                float *J = clean.ptr<float>(y);
                for (int x = 0; x < width; x++) J[x] = unblended(I[x], a[x], colour);
            }
        });
        clean.convertTo(clean8, CV_8U);
        const bool coarse = !plan.backgroundSize.empty() && plan.backgroundSize != grey.size();
        if (coarse) cv::resize(clean8, clean8, plan.backgroundSize, 0, 0, cv::INTER_AREA);
        // OpenCV's 8-bit median for kernels over 5 is single-threaded: in stripes.
        background = striped(clean8, medianSize / 2, CV_8U, [&](const cv::Mat &in, cv::Mat &out) {
            cv::medianBlur(in, out, medianSize);
        });
        background.convertTo(background, CV_32F);
        if (coarse) cv::resize(background, background, grey.size(), 0, 0, cv::INTER_LINEAR);
        background = gaussianStriped(background, 1.5);
        mean = gaussianStriped(clean, 2);
        meanSquare = gaussianStriped(clean.mul(clean), 2);
        forRows(height, [&](const cv::Range &rows) {
            for (int y = rows.start; y < rows.end; y++) {
                const float *I = grey.ptr<float>(y), *J = background.ptr<float>(y);
                const float *m = mean.ptr<float>(y), *m2 = meanSquare.ptr<float>(y);
                for (int x = 0; x < width; x++) {
                    size_t i = size_t(y) * width + x;
                    float span = colour - J[x];
                    // Copies over contrasting, smooth content say the most about the overlay.
                    float variance = std::max(0.0f, m2[x] - m[x] * m[x]);
                    bool usable = std::abs(span) >= 6;
                    sample[i] = usable ? (I[x] - J[x]) / span : 0;
                    weight[i] = usable ? span * span / (4 + variance) : 0;
                }
            }
        });
        // Weighted mean per texel, then two Tukey-reweighted passes against outliers.
        texelMeans(sample, weight, texel, nullptr, tpl);
        for (int pass = 0; pass < 2; pass++) {
            previous = tpl;
            texelMeans(sample, weight, texel, previous.data(), tpl);
        }
        forRows(height, [&](const cv::Range &rows) {
            for (int y = rows.start; y < rows.end; y++) {
                float *a = opacity.ptr<float>(y);
                for (int x = 0; x < width; x++) {
                    float v = std::clamp(tpl[texel[size_t(y) * width + x]], 0.0f, 0.9f);
                    a[x] = v < 0.02f ? 0 : v;
                }
            }
        });
        if (round == kGateRound && !emerging(opacity)) return false;
        // A light overlay is white: its fitted level came out at 249-254 on the samples and moved
        // the result by +-0.3 dB, so only a dark one's is fitted.
        if (dark && round < kRounds) colour = darkOverlayLevel(grey, background, mean, meanSquare, opacity, colour);
    }
    // Only where the photo itself shows the overlay: a periodic pattern that is part of the scene
    // (tile grout, a mesh behind the product) fits a lattice too, but the product in front of it
    // does not carry it. The overlay's local gain, the least-squares g in sample = g a over a
    // 15 px window, is ~1 where the overlay lies and ~0 where the pixels do not show it; the
    // template is kept where g > 0.5.
    cv::Mat numerator(grey.size(), CV_32F), denominator(grey.size(), CV_32F);
    for (int y = 0; y < height; y++) {
        const float *a = opacity.ptr<float>(y);
        float *num = numerator.ptr<float>(y), *den = denominator.ptr<float>(y);
        for (int x = 0; x < width; x++) {
            size_t i = size_t(y) * width + x;
            num[x] = weight[i] * sample[i] * a[x];
            den[x] = weight[i] * a[x] * a[x];
        }
    }
    cv::boxFilter(numerator, numerator, CV_32F, {15, 15}, {-1, -1}, false, cv::BORDER_REPLICATE);
    cv::boxFilter(denominator, denominator, CV_32F, {15, 15}, {-1, -1}, false, cv::BORDER_REPLICATE);
    // Near the product's edge the window also sees the overlay around it, so a clearly visible
    // stroke (a > 0.15) over contrasting content (|c - J| > 40, where one sample is reliable) that
    // shows less than a quarter of its opacity is dropped on its own evidence too.
    for (int y = 0; y < height; y++) {
        float *a = opacity.ptr<float>(y);
        const float *num = numerator.ptr<float>(y), *den = denominator.ptr<float>(y), *J = background.ptr<float>(y);
        for (int x = 0; x < width; x++) {
            if (a[x] <= 0) continue;
            size_t i = size_t(y) * width + x;
            // |sample| near 0: the pixel is the smooth content J itself. A strongly negative sample
            // is dark detail under a light overlay (or the reverse), which does carry it.
            bool absentHere = a[x] > 0.15f && std::abs(colour - J[x]) > 40 && std::abs(sample[i]) < 0.25f * a[x];
            if ((den[x] > 0 && num[x] < 0.5f * den[x]) || absentHere) a[x] = 0;
        }
    }
    // What the photo does not show no longer counts: the gate again on what is left.
    return clearlyVisible(opacity);
}

/// How much of the overlay inverting `opacity` of `colour` leaves. A real overlay's copies fade as
/// a whole, both their own strokes and the opposite ones (the gaps between light letters are dark
/// strokes, and the reverse), so this is how strongly the lattice repeats in the opposite kind of
/// stroke after the inversion, against the photo. A template of the wrong colour that passed the
/// fit's gate (a dark overlay on a white sweep, fitted as light from noise: the light/dark
/// contrast there is a few levels) leaves those strokes as strong or stronger, and its inversion
/// makes the photo worse.
float overlayLeft(const cv::Mat &grey, const cv::Mat &opacity, float colour, int strokeKernel, const Lattice &lattice,
                  const std::array<cv::Mat, 2> &before) {
    const int opposite = colour > 127 ? kDark : kBright; // light overlay: dark strokes, and the reverse
    if (before[opposite].empty()) return 0;
    cv::Mat cleaned(grey.size(), CV_32F);
    forRows(grey.rows, [&](const cv::Range &rows) {
        for (int y = rows.start; y < rows.end; y++) {
            const float *I = grey.ptr<float>(y), *a = opacity.ptr<float>(y);
            float *J = cleaned.ptr<float>(y);
            for (int x = 0; x < grey.cols; x++) J[x] = std::clamp(unblended(I[x], a[x], colour), 0.0f, 255.0f);
        }
    });
    float was = latticeStrength(before[opposite], lattice);
    cv::Mat afterwards = strokeCorrelation(cleaned, strokeShape(strokeKernel), opposite);
    float is = afterwards.empty() ? 0.0f : latticeStrength(afterwards, lattice);
    return was > 0 ? is / was : (is > 0 ? 1.0f : 0.0f);
}

} // namespace

extern "C" int CImagingBridge_removeTiledWatermark(uint8_t *rgb, int width, int height, int *found,
                                                   char *error, size_t errorSize) {
    *found = 0;
    return guarded("watermark removal", error, errorSize, [&] {
        // Detection and the fit run at a working size (short side <= 512 px): overlays are large,
        // smooth-edged text or logos. The kept template is fitted again at a finer size (below),
        // and the opacity map is enlarged from there for the inversion.
        if (std::min(width, height) < 128) return 0;
        cv::Mat image = wrap(rgb, width, height, 3);
        // The long side is bounded too, so a 512 x 65535 strip costs no more than a 512 x 2048 one.
        double scale = std::min({1.0, 512.0 / std::min(width, height), 2048.0 / std::max(width, height)});
        cv::Mat small = shrunk(image, scale);
        if (std::min(small.cols, small.rows) < 128) return 0; // a long thin strip: too few copies
        auto odd = [](double size, int least) { return std::max(least, int(std::lround(size)) | 1); };
        const int strokeKernel = odd(9 * scale, 3), medianSize = odd(15 * scale, 5);
        cv::Mat grey8, grey;
        cv::cvtColor(small, grey8, cv::COLOR_RGB2GRAY);
        grey8.convertTo(grey, CV_32F);
        const float colours[2] = {255.0f, 0.0f}; // light, dark
        float shortSide = float(std::min(grey.cols, grey.rows));
        std::array<cv::Mat, 2> correlations = strokeCorrelations(grey, strokeKernel);
        Lattice candidates[2];
        bool searched[2] = {false, false};
        for (int k = 0; k < 2; k++) {
            if (correlations[k].empty()) continue;
            candidates[k] = findLattice(correlations[k], shortSide * 0.06f, shortSide * 0.45f);
            searched[k] = true;
        }
        Lattice lattice;
        bool detected = false;
        for (int k = 0; k < 2; k++)
            if (searched[k] && candidates[k].score > lattice.score) lattice = candidates[k], detected = true;
        // Product texture and noise stay below this; the template fit is the real test.
        if (!detected || lattice.score < 0.015f) return 0;
        int texelCount = 0;
        std::vector<int> texel = texels(grey.cols, grey.rows, lattice, texelCount);
        // Either kind of stroke finds the lattice (the gaps between light letters are dark strokes),
        // so the fit decides the colour: both are fitted, and of those that pass the gates the one
        // whose inversion leaves least of the overlay (`overlayLeft`) is kept, if it measurably
        // removes it. Measured on the 36 sample scenes and the pasted-patch test: kept fits leave
        // 0.04-0.57, fits of the wrong colour (which made the photo worse) 0.61-0.65; a wrongly
        // kept fit damages the photo, a wrongly dropped one only leaves the overlay.
        constexpr float kMostLeft = 0.59f;
        cv::Mat opacity;
        float colour = 0, least = 0;
        bool fitted = false;
        for (float nominal : colours) {
            cv::Mat candidate;
            float level = nominal;
            if (!fitOverlay(grey, texel, texelCount, level, medianSize, candidate)) continue;
            float left = overlayLeft(grey, candidate, level, strokeKernel, lattice, correlations);
            if (fitted ? left < least : left <= kMostLeft) {
                least = left;
                opacity = candidate;
                colour = level;
                fitted = true;
            }
        }
        if (!fitted) return 0;
        // The working size blurs thin strokes (a light grid's 2-3 px letters are 1-1.5 px at half
        // size), and the inversion then left their rims and darkened around them: the template is
        // fitted again, two rounds at up to 1024 px on the short side and 2^20 pixels (the cost
        // of a 1024² photo whatever the shape), starting from the enlarged one, with the lattice
        // scaled per axis as the pixels map and the overlay's level kept. The smooth background's
        // median stays at the working size (at the fine size it doubled the fit's cost for
        // ~0.3 dB). The fine template replaces the working one only if it passes the gates and,
        // shrunk back to the working size, leaves no more of the overlay than the working one
        // did, or less than kNoiseLeft (where both are that low the ratio is noise: on the 36
        // scenes the fine templates left 0.00-0.46 against the working ones' 0.04-0.57, lower on
        // every scene but two light grids at 0.058 / 0.067 against 0.040 / 0.051, which the fine
        // fit improves by 5-7 dB); otherwise (or if the fine fit fails, e.g. for memory) the
        // working template stays.
        constexpr int kFineRounds = 2;
        constexpr float kNoiseLeft = 0.1f;
        constexpr double kFinePixels = 1024.0 * 1024.0;
        const double fine = std::min({1.0, 1024.0 / std::min(width, height), std::sqrt(kFinePixels / (double(width) * height))});
        if (fine > scale * 1.25) {
            try {
                cv::Mat fineImage = shrunk(image, fine), fineGrey;
                cv::cvtColor(fineImage, fineGrey, cv::COLOR_RGB2GRAY);
                fineGrey.convertTo(fineGrey, CV_32F);
                const float rx = float(fineGrey.cols) / float(grey.cols), ry = float(fineGrey.rows) / float(grey.rows);
                Lattice scaled = lattice;
                scaled.a = {lattice.a.x * rx, lattice.a.y * ry};
                scaled.b = {lattice.b.x * rx, lattice.b.y * ry};
                int fineCount = 0;
                std::vector<int> fineTexel = texels(fineGrey.cols, fineGrey.rows, scaled, fineCount);
                cv::Mat start, refined, check;
                cv::resize(opacity, start, fineGrey.size(), 0, 0, cv::INTER_LINEAR);
                float level = colour;
                if (fitOverlay(fineGrey, fineTexel, fineCount, level, medianSize, refined, {kFineRounds, &start, false, grey.size()})) {
                    cv::resize(refined, check, grey.size(), 0, 0, cv::INTER_AREA);
                    if (overlayLeft(grey, check, colour, strokeKernel, lattice, correlations) <= std::max(least, kNoiseLeft))
                        opacity = refined;
                }
            } catch (const std::bad_alloc &) {
            } catch (const cv::Exception &) {
            }
        }
        Bilinear enlarge(opacity.size(), width, height);
        forRows(height, [&](const cv::Range &rows) {
            std::vector<float> scratch(opacity.cols), a(width);
            for (int y = rows.start; y < rows.end; y++) {
                enlarge.row(opacity, y, scratch.data(), a.data());
                uint8_t *p = image.ptr<uint8_t>(y);
                for (int x = 0; x < width; x++) {
                    if (a[x] <= 0.01f) continue;
                    for (int c = 0; c < 3; c++)
                        p[3 * x + c] = cv::saturate_cast<uint8_t>(unblended(p[3 * x + c], a[x], colour));
                }
            }
        });
        *found = 1;
        return 0;
    });
}
