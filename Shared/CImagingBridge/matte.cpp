// Matte refinement (guided filter at full resolution) and the classical fallback segmenter.
#include <algorithm>
#include <optional>
#include <vector>
#include <opencv2/imgproc.hpp>

#include "bridge_internal.hpp"

using namespace imaging;

namespace {

cv::Mat boxMean(const cv::Mat &m, int r) {
    return striped(m, r, CV_32F, [&](const cv::Mat &in, cv::Mat &out) {
        cv::boxFilter(in, out, CV_32F, {2 * r + 1, 2 * r + 1}, {-1, -1}, true, cv::BORDER_REPLICATE);
    });
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
/// box-averaged, at the guide's resolution. The per-pixel algebra runs row by row over the threads,
/// between the (striped) box means.
void guidedCoefficients(const cv::Mat &I, const cv::Mat &p, int r, double eps, cv::Mat &meanA, cv::Mat &meanB) {
    cv::Mat squares(I.size(), CV_32F), products(I.size(), CV_32F);
    forRows(I.rows, [&](const cv::Range &rows) {
        for (int y = rows.start; y < rows.end; y++) {
            const float *i = I.ptr<float>(y), *q = p.ptr<float>(y);
            float *ii = squares.ptr<float>(y), *iq = products.ptr<float>(y);
            for (int x = 0; x < I.cols; x++) ii[x] = i[x] * i[x], iq[x] = i[x] * q[x];
        }
    });
    cv::Mat meanI = boxMean(I, r), meanP = boxMean(p, r), meanII = boxMean(squares, r), meanIP = boxMean(products, r);
    cv::Mat a = std::move(squares), b = std::move(products); // reused as a and b
    const float epsilon = float(eps);
    forRows(I.rows, [&](const cv::Range &rows) {
        for (int y = rows.start; y < rows.end; y++) {
            const float *mi = meanI.ptr<float>(y), *mp = meanP.ptr<float>(y);
            const float *mii = meanII.ptr<float>(y), *mip = meanIP.ptr<float>(y);
            float *ra = a.ptr<float>(y), *rb = b.ptr<float>(y);
            for (int x = 0; x < I.cols; x++) {
                const float variance = mii[x] - mi[x] * mi[x], covariance = mip[x] - mi[x] * mp[x];
                ra[x] = covariance / (variance + epsilon);
                rb[x] = mp[x] - ra[x] * mi[x];
            }
        }
    });
    meanA = boxMean(a, r);
    meanB = boxMean(b, r);
}


/// A smooth surface of the photo's background over rows [top, bottom): per channel a quadratic in
/// (x, y), fitted on the part of the image's border ring in those rows and then refitted on every
/// pixel of the rows it explains (so a vignette's centre counts too). The fit uses every 6th pixel
/// of every 6th row. `noise` is the robust spread of the residual over the pixels it explains, at
/// least one level (a clipped-white background fits exactly).
class Surface {
  public:
    bool fitted = false;
    float noise = 0;

    Surface(const cv::Mat &rgb, int top, int bottom) : width(rgb.cols), height(rgb.rows) {
        const int ring = std::max(1, std::min(width, height) / 25);
        struct Sample { double t[6]; cv::Vec3f colour; bool explained; };
        std::vector<Sample> samples;
        for (int y = top; y < bottom; y += 6)
            for (int x = 0; x < width; x += 6) {
                Sample sample;
                terms(x, y, sample.t);
                const uint8_t *c = rgb.ptr<uint8_t>(y) + 3 * x;
                sample.colour = {float(c[0]), float(c[1]), float(c[2])};
                sample.explained = x < ring || y < ring || x >= width - ring || y >= height - ring;
                samples.push_back(sample);
            }
        std::vector<float> residuals(samples.size()), explainedResiduals;
        for (int round = 0; round < 3; round++) {
            cv::Matx66d normal = cv::Matx66d::zeros();
            cv::Matx<double, 6, 3> right = cv::Matx<double, 6, 3>::zeros();
            for (const Sample &sample : samples) {
                if (!sample.explained) continue;
                for (int i = 0; i < 6; i++) {
                    for (int j = 0; j < 6; j++) normal(i, j) += sample.t[i] * sample.t[j];
                    for (int k = 0; k < 3; k++) right(i, k) += sample.t[i] * sample.colour[k];
                }
            }
            if (!cv::solve(normal, right, coefficients, cv::DECOMP_SVD)) { fitted = false; return; }
            explainedResiduals.clear();
            for (size_t i = 0; i < samples.size(); i++) {
                residuals[i] = float(cv::norm(samples[i].colour - evaluate(samples[i].t)));
                if (samples[i].explained) explainedResiduals.push_back(residuals[i]);
            }
            if (explainedResiduals.empty()) { fitted = false; return; }
            auto middle = explainedResiduals.begin() + explainedResiduals.size() / 2;
            std::nth_element(explainedResiduals.begin(), middle, explainedResiduals.end());
            noise = std::max(1.0f, 1.4826f * *middle);
            fitted = true;
            for (size_t i = 0; i < samples.size(); i++) samples[i].explained = residuals[i] < 3 * noise + 2;
        }
    }

    cv::Vec3f at(int x, int y) const {
        double t[6];
        terms(x, y, t);
        return evaluate(t);
    }

  private:
    int width, height;
    cv::Matx<double, 6, 3> coefficients = cv::Matx<double, 6, 3>::zeros();

    void terms(int x, int y, double t[6]) const {
        double u = double(x) / width - 0.5, v = double(y) / height - 0.5;
        t[0] = 1, t[1] = u, t[2] = v, t[3] = u * u, t[4] = v * v, t[5] = u * v;
    }
    cv::Vec3f evaluate(const double t[6]) const {
        cv::Vec3f model;
        for (int k = 0; k < 3; k++) {
            double m = 0;
            for (int i = 0; i < 6; i++) m += t[i] * coefficients(i, k);
            model[k] = float(m);
        }
        return model;
    }
};

/// The photo's background: one smooth surface, or, when one surface does not fit (σ > kSmooth) and
/// the photo is a product on a table in front of a wall, two: the wall above the horizon and the
/// table below it. The horizon is the row where the colour of the image's left and right border
/// strips steps most (means over a twentieth of the height either side); the split is kept only
/// when both surfaces fit (σ <= kSmooth each). `noise` is then the larger of the two.
class BackgroundModel {
  public:
    bool fitted = false;
    float noise = 0;

    BackgroundModel(const cv::Mat &rgb, float kSmooth) : whole(rgb, 0, rgb.rows) {
        fitted = whole.fitted;
        noise = whole.noise;
        if (fitted && noise <= kSmooth) return;
        const int horizon = findHorizon(rgb);
        if (horizon <= 0) return;
        Surface above(rgb, 0, horizon), below(rgb, horizon, rgb.rows);
        if (!above.fitted || !below.fitted || std::max(above.noise, below.noise) > kSmooth) return;
        split = horizon;
        wall.emplace(std::move(above));
        table.emplace(std::move(below));
        fitted = true;
        noise = std::max(wall->noise, table->noise);
    }

    cv::Vec3f at(int x, int y) const {
        if (split > 0) return y < split ? wall->at(x, y) : table->at(x, y);
        return whole.at(x, y);
    }

  private:
    Surface whole;
    std::optional<Surface> wall, table;
    int split = 0;

    static int findHorizon(const cv::Mat &rgb) {
        const int w = rgb.cols, h = rgb.rows, ring = std::max(1, std::min(w, h) / 25), window = h / 20;
        if (window < 2) return 0;
        std::vector<cv::Vec3d> rows(h + 1, cv::Vec3d(0, 0, 0)); // running sums of the strips' row means
        for (int y = 0; y < h; y++) {
            const uint8_t *row = rgb.ptr<uint8_t>(y);
            cv::Vec3d sum(0, 0, 0);
            for (int x = 0; x < ring; x++)
                for (int k = 0; k < 3; k++) sum[k] += row[3 * x + k] + row[3 * (w - 1 - x) + k];
            rows[y + 1] = rows[y] + sum / double(2 * ring);
        }
        int best = 0;
        double bestStep = 0;
        for (int y = window; y <= h - window; y++) {
            const double step = cv::norm((rows[y] - rows[y - window]) - (rows[y + window] - rows[y])) / window;
            if (step > bestStep) bestStep = step, best = y;
        }
        return best;
    }
};

/// What colour says about a photo whose background is a smooth surface: the fitted background, each
/// pixel's distance from it, and the nearby "solid" product colour (far from the background relative
/// to the product's own contrast) for a given product mask. `usable()` is false for a photo too
/// small for a border ring or a background that is not smooth (σ > kSmoothNoise: a cluttered
/// photo), where colour says nothing reliable.
class ColourEvidence {
  public:
    static constexpr float kSmoothNoise = 12;

    explicit ColourEvidence(const cv::Mat &rgb) : rgb(rgb) {
        if (std::min(rgb.cols, rgb.rows) < 32) return; // too small for a border ring and a product
        background.emplace(rgb, kSmoothNoise);
        if (!background->fitted || background->noise > kSmoothNoise) return;
        smooth = true;
        distance.create(rgb.rows, rgb.cols, CV_32F);
        forRows(rgb.rows, [&](const cv::Range &rows) {
            for (int y = rows.start; y < rows.end; y++) {
                const uint8_t *c = rgb.ptr<uint8_t>(y);
                float *d = distance.ptr<float>(y);
                for (int x = 0; x < rgb.cols; x++) {
                    cv::Vec3f b = background->at(x, y);
                    float r = c[3 * x] - b[0], g = c[3 * x + 1] - b[1], l = c[3 * x + 2] - b[2];
                    d[x] = std::sqrt(r * r + g * g + l * l);
                }
            }
        });
    }

    bool usable() const { return smooth; }
    float noise() const { return background->noise; }
    cv::Vec3f backgroundAt(int x, int y) const { return background->at(x, y); }
    const cv::Mat &distanceFromBackground() const { return distance; }

    /// The solid part of `product` and, per pixel, the mean colour of the solid product within a
    /// window of ~1/12 of the product's size (a normalised box filter per channel at half size: a
    /// mean over >= 17 px), or the overall solid colour where none is near. False when the product
    /// has no solid part.
    struct Product {
        cv::Mat solid, support, nearby[3];
        cv::Scalar overall;
        cv::Vec3f colourAt(int x, int y) const {
            const float count = support.at<float>(y / 2, x / 2);
            if (count <= 0.5f) return {float(overall[0]), float(overall[1]), float(overall[2])};
            return cv::Vec3f(nearby[0].at<float>(y / 2, x / 2), nearby[1].at<float>(y / 2, x / 2),
                             nearby[2].at<float>(y / 2, x / 2)) / count;
        }
    };

    bool describe(const cv::Mat &product, Product &out) const {
        if (!smooth) return false;
        const int w = rgb.cols, h = rgb.rows, productPixels = cv::countNonZero(product);
        if (productPixels < 100) return false;
        std::vector<float> inside;
        inside.reserve(productPixels);
        for (int y = 0; y < h; y++) {
            const uint8_t *m = product.ptr<uint8_t>(y);
            const float *d = distance.ptr<float>(y);
            for (int x = 0; x < w; x++) if (m[x]) inside.push_back(d[x]);
        }
        auto ninetieth = inside.begin() + inside.size() * 9 / 10;
        std::nth_element(inside.begin(), ninetieth, inside.end());
        out.solid = product & (distance >= std::max(6 * background->noise, 0.5f * *ninetieth));
        if (cv::countNonZero(out.solid) == 0) return false;
        int radius = std::max(4, int(std::sqrt(double(productPixels)) / 12));
        cv::Size window(2 * radius + 1, 2 * radius + 1), half((w + 1) / 2, (h + 1) / 2);
        // The mean is over the half-size cells' mean colours, each weighted by its solid share, so a
        // cell on the product's edge brings some of the background's colour in. Weighting the
        // solid pixels alone (colour times solid at full size, then averaged down) measured a little
        // worse on the 36 sample scenes (2026-12-07: boundary F 0.876 -> 0.875; dv07, dev06, dv21
        // lose 0.003-0.011, dev07 gains 0.006), the bounds below having been chosen with this mean.
        cv::Mat weight, plane;
        out.solid.convertTo(weight, CV_32F, 1.0 / 255);
        cv::resize(weight, weight, half, 0, 0, cv::INTER_AREA);
        auto boxSum = [&](const cv::Mat &m) {
            return striped(m, radius, CV_32F, [&](const cv::Mat &in, cv::Mat &result) {
                cv::boxFilter(in, result, CV_32F, window, {-1, -1}, false, cv::BORDER_REPLICATE);
            });
        };
        out.support = boxSum(weight);
        for (int c = 0; c < 3; c++) {
            cv::extractChannel(rgb, plane, c);
            plane.convertTo(plane, CV_32F);
            cv::resize(plane, plane, half, 0, 0, cv::INTER_AREA);
            cv::multiply(plane, weight, plane);
            out.nearby[c] = boxSum(plane);
        }
        out.overall = cv::mean(rgb, out.solid);
        return true;
    }

  private:
    cv::Mat rgb; // a header: the pixels are the caller's
    std::optional<BackgroundModel> background;
    bool smooth = false;
    cv::Mat distance;
};

/// Where the pixel's colour lies between the local background B and the nearby solid product
/// colour F: t = 0 at B, 1 at F (projected on B -> F), and whether its offset from B points along
/// that direction (or is within the background's noise). `span` is |F - B|.
struct Blend { float t, span; bool aligned; };
Blend blendOf(const uint8_t *pixel, cv::Vec3f B, cv::Vec3f F, float distance, float noise) {
    constexpr float kAligned = 0.9f;
    cv::Vec3f span = F - B, offset(pixel[0] - B[0], pixel[1] - B[1], pixel[2] - B[2]);
    float spanSquared = span.dot(span);
    if (spanSquared < 1e-6f) return {0, 0, false};
    float along = offset.dot(span), length = std::sqrt(spanSquared);
    return {along / spanSquared, length, distance < 3 * noise || along > kAligned * distance * length};
}

/// Gives back the thin parts the steepened prior dropped (a headphone band, a strap, a cable the
/// model saw only faintly) where colour tells them from the background: a pixel below the prior's
/// cut that is coloured like the nearby solid product (blend weight t >= 0.6 towards it, aligned,
/// far from the background: >= 6σ, with product and background themselves >= max(10σ, 40 levels)
/// apart), darker than half the background's own colour (a cast shadow darkens the background by
/// less: on the 36 sample scenes the shadows near a product keep 0.40-0.90 of it), and joined to
/// the product through such pixels, becomes product in the prior. The guided filter then finds its
/// edge. In the floor band (from the lowest tenth of the product's height down to the photo's
/// bottom, where shadows fall and are darkest) only thin strokes count: what an opening with a disc
/// of radius kThinRadius px at 1024 px removes (a cable lying on the floor), less what lies within
/// a pixel of the wide parts it keeps (a shadow's rim). And of those only the ones that lead away
/// from the product: a stroke with more than half its pixels within kHugging px of the product is
/// the dark line of a contact shadow along its base. Photos whose background is not smooth get
/// nothing back: there colour says nothing.
void recoverFaintParts(const cv::Mat &rgb, const ColourEvidence &evidence, cv::Mat &prior) {
    constexpr float kProductLike = 0.6f, kSpanNoise = 10, kSpanLevels = 40, kDarkerThanShadow = 0.5f;
    constexpr double kFloorBand = 0.1, kThinRadius = 4, kHugging = 4, kMostlyHugging = 0.5; // px at 1024
    const int w = rgb.cols, h = rgb.rows;
    cv::Mat product = prior >= 0.5f;
    ColourEvidence::Product colours;
    if (!evidence.describe(product, colours)) return;
    const cv::Rect extent = cv::boundingRect(product);
    const int top = extent.y, bottom = extent.y + extent.height - 1;
    const int floorLine = std::max(0, bottom - int(std::ceil(kFloorBand * (bottom - top))));
    const float noise = evidence.noise(), minimumSpan = std::max(kSpanNoise * noise, kSpanLevels);
    const cv::Mat &distance = evidence.distanceFromBackground();
    cv::Mat candidates = cv::Mat::zeros(h, w, CV_8U);
    forRows(h, [&](const cv::Range &rows) {
        for (int y = rows.start; y < rows.end; y++) {
            const uint8_t *pixel = rgb.ptr<uint8_t>(y), *inProduct = product.ptr<uint8_t>(y);
            const float *d = distance.ptr<float>(y);
            uint8_t *out = candidates.ptr<uint8_t>(y);
            for (int x = 0; x < w; x++) {
                if (inProduct[x] || d[x] < 6 * noise) continue;
                cv::Vec3f B = evidence.backgroundAt(x, y);
                const uint8_t *c = pixel + 3 * x;
                float brightness = (c[0] * B[0] + c[1] * B[1] + c[2] * B[2]) / std::max(1e-6f, B.dot(B));
                if (brightness >= kDarkerThanShadow) continue;
                Blend blend = blendOf(c, B, colours.colourAt(x, y), d[x], noise);
                if (blend.aligned && blend.t >= kProductLike && blend.span >= minimumSpan) out[x] = 255;
            }
        }
    });
    if (cv::countNonZero(candidates) == 0) return; // nothing product-like outside it
    // The floor band keeps its thin strokes that lead away from the product.
    const double perPixel = std::max(w, h) / 1024.0;
    cv::Mat floor = candidates.rowRange(floorLine, h);
    if (!floor.empty() && cv::countNonZero(floor) > 0) {
        auto disc = [](double radius) {
            const int r = std::max(1, int(std::lround(radius)));
            return cv::getStructuringElement(cv::MORPH_ELLIPSE, {2 * r + 1, 2 * r + 1});
        };
        cv::Mat wide, near, labels;
        cv::morphologyEx(floor, wide, cv::MORPH_OPEN, disc(kThinRadius * perPixel));
        cv::dilate(wide, wide, disc(kThinRadius * perPixel + 1));
        cv::Mat thin = floor & ~wide;
        cv::dilate(product.rowRange(floorLine, h), near, disc(kHugging * perPixel));
        const int count = cv::connectedComponents(thin, labels, 8, CV_32S);
        std::vector<int> length(size_t(std::max(count, 1)), 0), hugging(length.size(), 0);
        for (int y = 0; y < thin.rows; y++) {
            const int *label = labels.ptr<int>(y);
            const uint8_t *close = near.ptr<uint8_t>(y);
            for (int x = 0; x < w; x++) {
                if (label[x] == 0) continue;
                length[label[x]]++;
                if (close[x]) hugging[label[x]]++;
            }
        }
        for (int y = 0; y < thin.rows; y++) {
            const int *label = labels.ptr<int>(y);
            uint8_t *out = floor.ptr<uint8_t>(y);
            for (int x = 0; x < w; x++)
                out[x] = label[x] > 0 && hugging[label[x]] <= kMostlyHugging * length[label[x]] ? 255 : 0;
        }
    }
    cv::Mat reach = product | candidates;
    // Keep what is joined to the product.
    cv::Mat labels;
    const int count = cv::connectedComponents(reach, labels, 8, CV_32S);
    std::vector<uint8_t> joined(size_t(std::max(count, 1)), 0);
    for (int y = 0; y < h; y++) {
        const uint8_t *m = product.ptr<uint8_t>(y);
        const int *label = labels.ptr<int>(y);
        for (int x = 0; x < w; x++) if (m[x]) joined[label[x]] = 1;
    }
    for (int y = 0; y < h; y++) {
        const uint8_t *m = product.ptr<uint8_t>(y), *r = reach.ptr<uint8_t>(y);
        const int *label = labels.ptr<int>(y);
        float *p = prior.ptr<float>(y);
        for (int x = 0; x < w; x++)
            if (r[x] && !m[x] && joined[label[x]]) p[x] = 1;
    }
}

/// Where the model is unsure (raw map < 0.9) and the matte still says product, a pixel whose colour
/// is a blend of the local background and the nearby solid product colour, mostly background
/// (t < 0.25), is background with a faint overlay (a centred watermark, a reflection) or the
/// product's thin fringe: its alpha is capped at its blend weight t. Returns the cap per pixel
/// (1 = no cap) at the working size, or an empty Mat when colour says nothing (`evidence` not usable).
cv::Mat blendCap(const cv::Mat &rgb, const ColourEvidence &evidence, const cv::Mat &matte, const cv::Mat &model) {
    constexpr float kUnsure = 0.9f, kMostlyBackground = 0.25f;
    if (!evidence.usable()) return {};
    const int w = rgb.cols, h = rgb.rows;
    cv::Mat product = matte >= 0.5f;
    ColourEvidence::Product colours;
    if (!evidence.describe(product, colours)) return {};
    const float noise = evidence.noise();
    const cv::Mat &distance = evidence.distanceFromBackground();
    cv::Mat cap(h, w, CV_32F, cv::Scalar(1));
    forRows(h, [&](const cv::Range &rows) {
        for (int y = rows.start; y < rows.end; y++) {
            const uint8_t *inProduct = product.ptr<uint8_t>(y), *isSolid = colours.solid.ptr<uint8_t>(y);
            const float *unsure = model.ptr<float>(y), *d = distance.ptr<float>(y);
            const uint8_t *pixel = rgb.ptr<uint8_t>(y);
            float *out = cap.ptr<float>(y);
            for (int x = 0; x < w; x++) {
                if (!inProduct[x] || isSolid[x] || unsure[x] >= kUnsure) continue;
                Blend blend = blendOf(pixel + 3 * x, evidence.backgroundAt(x, y), colours.colourAt(x, y), d[x], noise);
                if (blend.span > 0 && blend.t < kMostlyBackground && blend.aligned) out[x] = std::max(0.0f, blend.t);
            }
        }
    });
    return cap;
}

/// Closes the small holes the refinement opened inside the product where the model saw product: a
/// region below alpha 0.5 enclosed by the product, smaller than kSmallHoleShare of the product's
/// area, over which the model's map averages at least 0.5. Across the 36 sample scenes every such hole
/// is a speck the guided filter or the blend cap carved where the product's colour meets the
/// background's (a highlight on a white bottle, a white box's face), and it showed the new background
/// through the product; a real opening (a mug's handle, ~13 % of the product) is far larger, and a
/// small one the model sees (its map is low there) stays open.
/// `product` is the matte's product mask (alpha >= 0.5); the holes closed are filled in both.
void closeSmallHoles(cv::Mat &matte, cv::Mat &product, const cv::Mat &model) {
    constexpr double kSmallHoleShare = 0.002;
    const double area = cv::countNonZero(product);
    std::vector<std::vector<cv::Point>> contours;
    std::vector<cv::Vec4i> hierarchy;
    cv::findContours(product, contours, hierarchy, cv::RETR_CCOMP, cv::CHAIN_APPROX_SIMPLE);
    const double toModelX = double(model.cols) / matte.cols, toModelY = double(model.rows) / matte.rows;
    for (size_t i = 0; i < contours.size(); i++) {
        // RETR_CCOMP: an outline with a parent is a hole's.
        if (hierarchy[i][3] < 0 || cv::contourArea(contours[i]) > kSmallHoleShare * area) continue;
        cv::Rect box = cv::boundingRect(contours[i]);
        cv::Mat inside = cv::Mat::zeros(box.size(), CV_8U);
        cv::drawContours(inside, contours, int(i), cv::Scalar(255), cv::FILLED, cv::LINE_8, cv::noArray(), 0, -box.tl());
        double said = 0;
        int pixels = 0;
        for (int y = 0; y < box.height; y++) {
            const uint8_t *in = inside.ptr<uint8_t>(y), *alpha = matte.ptr<uint8_t>(box.y + y) + box.x;
            const float *map = model.ptr<float>(std::min(model.rows - 1, int((box.y + y) * toModelY)));
            for (int x = 0; x < box.width; x++) {
                if (!in[x] || alpha[x] >= 128) continue;
                said += map[std::min(model.cols - 1, int((box.x + x) * toModelX))];
                pixels++;
            }
        }
        if (pixels > 0 && said / pixels >= 0.5) {
            cv::drawContours(matte, contours, int(i), cv::Scalar(255), cv::FILLED);
            cv::drawContours(product, contours, int(i), cv::Scalar(255), cv::FILLED);
        }
    }
}

/// Closes the narrow dents the refinement cut into the product's outline where the model saw
/// product: what a morphological closing of the product mask adds (notches and gaps narrower than
/// about 2 kDentRadius + 1 px at 1024 px, in proportion at other sizes), kept only where the
/// model's map says product (>= 0.5), becomes wholly product. On the 36 sample scenes such notches,
/// 3-5 px deep, sat where the product's colour meets the background's (a white bottle on a white
/// sweep, text crossing a rim) and let the new background into the product; a concave corner or a
/// narrow gap the model sees as background (a mug's handle meeting its body) stays as it was. A
/// closing rounds a notch's mouth: a nick about as deep as the radius stays.
/// The notches are found at the model's working size (at most 1024 px on the long side; a closing
/// of a whole 4000² mask took 250 ms), then closed at full size around each one found (the whole
/// mask at once when they cover most of it).
/// `product` is the matte's product mask (alpha >= 0.5); what is closed is filled in both.
void closeNarrowDents(cv::Mat &matte, cv::Mat &product, const cv::Mat &model) {
    constexpr double kDentRadius = 4; // at 1024 px on the long side
    const double toModel = double(std::max(model.cols, model.rows)) / std::max(matte.cols, matte.rows);
    auto closing = [](const cv::Mat &mask, int radius) {
        cv::Mat added;
        cv::morphologyEx(mask, added, cv::MORPH_CLOSE,
                         cv::getStructuringElement(cv::MORPH_ELLIPSE, {2 * radius + 1, 2 * radius + 1}));
        return added & ~mask;
    };
    const int radius = std::max(2, int(std::lround(kDentRadius * std::max(model.cols, model.rows) / 1024.0)));
    std::vector<cv::Rect> places;
    if (product.size() == model.size()) {
        places.push_back(cv::Rect(0, 0, product.cols, product.rows));
    } else {
        // A cell counts as product only when nearly all of it is, so a notch narrower than a cell
        // (a cell is ~4 px at 4000²) still shows as one.
        cv::Mat small;
        cv::resize(product, small, model.size(), 0, 0, cv::INTER_AREA);
        small = small >= 224;
        cv::Mat found = closing(small, radius) & (model >= 0.5f);
        // Nearby notches share one place (each place is closed with a margin of 3 radii).
        cv::dilate(found, found, cv::getStructuringElement(cv::MORPH_RECT, {6 * radius + 1, 6 * radius + 1}));
        std::vector<std::vector<cv::Point>> contours;
        cv::findContours(found, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
        double area = 0;
        for (const auto &contour : contours) {
            cv::Rect box = cv::boundingRect(contour);
            places.push_back(cv::Rect(int(box.x / toModel), int(box.y / toModel),
                                      int(std::ceil(box.width / toModel)), int(std::ceil(box.height / toModel))));
            area += places.back().area();
        }
        // Notches all over: one closing of the whole mask costs less than many of its parts.
        if (area > 0.5 * product.total()) places.assign(1, cv::Rect(0, 0, product.cols, product.rows));
    }
    const int fullRadius = std::max(2, int(std::lround(radius / toModel)));
    const cv::Rect whole(0, 0, matte.cols, matte.rows);
    for (const cv::Rect &place : places) {
        // The closing is exact inside `inner` when computed on `outer`, 2 radii larger all round.
        const cv::Rect inner = (place + cv::Size(2 * fullRadius, 2 * fullRadius) - cv::Point(fullRadius, fullRadius)) & whole;
        const cv::Rect outer = (inner + cv::Size(4 * fullRadius + 2, 4 * fullRadius + 2) - cv::Point(2 * fullRadius + 1, 2 * fullRadius + 1)) & whole;
        cv::Mat added = closing(product(outer).clone(), fullRadius);
        for (int y = inner.y; y < inner.y + inner.height; y++) {
            const uint8_t *closes = added.ptr<uint8_t>(y - outer.y) + (inner.x - outer.x);
            uint8_t *alpha = matte.ptr<uint8_t>(y), *inside = product.ptr<uint8_t>(y);
            const float *said = model.ptr<float>(std::min(model.rows - 1, int(y * toModel)));
            for (int x = inner.x; x < inner.x + inner.width; x++) {
                if (!closes[x - inner.x] || said[std::min(model.cols - 1, int(x * toModel))] < 0.5f) continue;
                alpha[x] = 255;
                inside[x] = 255;
            }
        }
    }
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
        cv::Mat small = shrunk(image, scale);
        cv::Mat grey;
        cv::cvtColor(small, grey, cv::COLOR_RGB2GRAY);
        grey.convertTo(grey, CV_32F, 1.0 / 255);
        cv::Mat map(side, side, CV_32F, const_cast<float *>(coarse));
        cv::Mat p = prior(map, grey.size());
        ColourEvidence evidence(small);
        if (evidence.usable()) recoverFaintParts(small, evidence, p);
        int longSide = std::max(grey.cols, grey.rows);
        int radius = std::max(2, int(std::lround(longSide / 170.0)));
        cv::Mat meanA, meanB;
        guidedCoefficients(grey, p, radius, 1e-3, meanA, meanB);
        // The matte at the working size, for the blend check.
        cv::Mat matte = meanA.mul(grey) + meanB, model;
        matte = (matte - 0.06f) * (1.0f / 0.88f);
        cv::resize(map, model, grey.size(), 0, 0, cv::INTER_LINEAR);
        cv::Mat cap = blendCap(small, evidence, matte, model);
        // alpha = a I + b at full size, then near-certain values snapped: the background must end
        // up exactly transparent. Then steepened around 0.5: the guided filter's transition spans
        // its window (~6 px each side at 1024²) wherever product and background have similar
        // grey, while a photo's edge is about a pixel wide, so without it the product's own rim
        // came out partly transparent and the composite recoloured it (on the 36 sample scenes the
        // product lost up to 4 dB against the photo there). The 0.5 contour does not move.
        constexpr float kEdgeSteepness = 3.0f;
        Bilinear enlarge(grey.size(), width, height);
        const float kGrey[3] = {0.299f / 255, 0.587f / 255, 0.114f / 255};
        forRows(height, [&](const cv::Range &rows) {
            std::vector<float> scratch(grey.cols), rowA(width), rowB(width), rowCap(width, 1.0f);
            for (int y = rows.start; y < rows.end; y++) {
                enlarge.row(meanA, y, scratch.data(), rowA.data());
                enlarge.row(meanB, y, scratch.data(), rowB.data());
                if (!cap.empty()) enlarge.row(cap, y, scratch.data(), rowCap.data());
                const uint8_t *pixel = image.ptr<uint8_t>(y);
                uint8_t *out = alpha + size_t(y) * width;
                for (int x = 0; x < width; x++) {
                    const uint8_t *c = pixel + 3 * x;
                    float I = kGrey[0] * c[0] + kGrey[1] * c[1] + kGrey[2] * c[2];
                    float q = (rowA[x] * I + rowB[x] - 0.06f) * (1.0f / 0.88f);
                    q = std::min((q - 0.5f) * kEdgeSteepness + 0.5f, rowCap[x]);
                    out[x] = cv::saturate_cast<uint8_t>(q * 255.0f);
                }
            }
        });
        cv::Mat matteOut(height, width, CV_8U, alpha), core = matteOut >= 128;
        closeSmallHoles(matteOut, core, model);
        closeNarrowDents(matteOut, core, model);
        // The opaque core: a product pixel (alpha >= 0.5) whose four neighbours are product too is
        // wholly product. A photo's edge is about a pixel wide, but where product and background
        // have similar grey the steepened filter still leaves a few rim pixels inside the contour
        // partly transparent, and the composite then mixed the new background into the product
        // and recoloured it: on the 36 sample scenes 6 of 32 opaque products came out (slightly)
        // worse than the photo only because of that (docs/engine.md, stage 4). The outermost pixel
        // keeps its alpha for the edge's own blend; the 0.5 contour does not move.
        cv::erode(core, core, cv::getStructuringElement(cv::MORPH_CROSS, {3, 3}));
        matteOut.setTo(255, core);
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
