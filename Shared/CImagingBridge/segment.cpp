// U²-Net-p through OpenCV's dnn module, at one or more input sides. A cv::dnn::Net is not safe for
// concurrent forward passes, so the segmenter keeps a small pool per side: each call borrows an
// idle net or loads another one.
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "bridge_internal.hpp"

using namespace imaging;

namespace {

/// The side the model files declare for their input (U²-Net-p and U²-Net: 1x3x320x320).
constexpr int kDeclaredSide = 320;

/// Protobuf wire format, just enough to walk an ONNX ModelProto to its graph inputs' dimensions.
struct Wire {
    const uint8_t *at, *end;
    bool done() const { return at >= end; }
    uint64_t varint() {
        uint64_t value = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (at >= end) throw std::runtime_error("the model file is truncated");
            uint8_t byte = *at++;
            value |= uint64_t(byte & 0x7f) << shift;
            if (!(byte & 0x80)) return value;
        }
        throw std::runtime_error("the model file has a malformed varint");
    }
    /// Reads one field's key; for a length-delimited field, `body` is its bytes; other kinds are
    /// skipped (body empty, `varintStart` where a varint value began).
    bool next(int &field, Wire &body, const uint8_t *&varintStart) {
        if (done()) return false;
        uint64_t key = varint();
        field = int(key >> 3);
        body = {at, at};
        varintStart = nullptr;
        switch (key & 7) {
        case 0: varintStart = at; varint(); break;
        case 1:
            if (end - at < 8) throw std::runtime_error("the model file is truncated");
            at += 8;
            break;
        case 5:
            if (end - at < 4) throw std::runtime_error("the model file is truncated");
            at += 4;
            break;
        case 2: {
            uint64_t length = varint();
            if (length > uint64_t(end - at)) throw std::runtime_error("the model file is truncated");
            body = {at, at + length};
            at += length;
            break;
        }
        default: throw std::runtime_error("the model file has an unknown wire type");
        }
        if (at > end) throw std::runtime_error("the model file is truncated");
        return true;
    }
    /// The bodies of every length-delimited field number `wanted`.
    std::vector<Wire> all(int wanted) const {
        std::vector<Wire> found;
        Wire cursor = *this, body{};
        int field = 0;
        const uint8_t *varintStart = nullptr;
        while (cursor.next(field, body, varintStart))
            if (field == wanted && body.end != body.at) found.push_back(body);
        return found;
    }
};

/// Rewrites the model's declared image input (N x 3 x 320 x 320) to `side` x `side`, in place. The
/// two sides' varints have the same length (both in 128..16383), so no enclosing length changes.
/// OpenCV 4.6 folds the graph's Resize sizes from the declared input shape while importing, and
/// refuses any other size at forward time; a model read with the patched shape runs at `side`.
void declareInputSide(std::vector<uint8_t> &model, int side) {
    if (side < 128 || side > 16383) throw std::runtime_error("input side out of range");
    Wire file{model.data(), model.data() + model.size()};
    int patched = 0;
    for (Wire graph : file.all(7))                      // ModelProto.graph
        for (Wire input : graph.all(11))                // GraphProto.input (ValueInfoProto)
            for (Wire type : input.all(2))              // ValueInfoProto.type
                for (Wire tensor : type.all(1))         // TypeProto.tensor_type
                    for (Wire shape : tensor.all(2)) {  // Tensor.shape
                        std::vector<uint8_t *> values;  // each Dimension.dim_value's varint
                        std::vector<uint64_t> dims;
                        for (Wire dim : shape.all(1)) {
                            int field = 0;
                            Wire body{};
                            const uint8_t *start = nullptr;
                            Wire cursor = dim;
                            uint8_t *value = nullptr;
                            uint64_t number = 0;
                            while (cursor.next(field, body, start))
                                if (field == 1 && start) {
                                    Wire read{start, cursor.at};
                                    number = read.varint();
                                    // Only a two-byte varint is rewritten in place (320 is encoded so
                                    // by every writer; a padded encoding is left, and refused below).
                                    value = cursor.at - start == 2 ? const_cast<uint8_t *>(start) : nullptr;
                                }
                            values.push_back(value);
                            dims.push_back(number);
                        }
                        if (dims.size() != 4 || dims[1] != 3 || dims[2] != kDeclaredSide ||
                            dims[3] != kDeclaredSide || !values[2] || !values[3])
                            continue;
                        for (int axis : {2, 3}) {
                            values[axis][0] = uint8_t(0x80 | (side & 0x7f));
                            values[axis][1] = uint8_t(side >> 7);
                        }
                        patched++;
                    }
    if (patched != 1) throw std::runtime_error("the model does not declare one 3x320x320 image input");
}

/// One input side and its idle nets.
struct Scale {
    int side;
    std::vector<cv::dnn::Net> idle;
};

/// Reads the model at `path` and builds a net that takes `side` x `side` input. The file is read
/// again for every net (a pool grows only when jobs overlap), so no copy of its bytes is kept.
cv::dnn::Net loadNet(const std::string &path, int side) {
    std::ifstream file(path, std::ios::binary);
    if (!file) throw std::runtime_error("cannot open the model file");
    std::vector<uint8_t> model((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    if (side != kDeclaredSide) declareInputSide(model, side);
    registerFastConvolution(); // before the importer builds its layers
    cv::dnn::Net net = cv::dnn::readNetFromONNX(reinterpret_cast<const char *>(model.data()), model.size());
    if (net.empty()) throw std::runtime_error("the model has no layers");
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    return net;
}

} // namespace

struct CImagingBridge_Segmenter {
    std::string path;
    std::string outputName; // the fused saliency map (d0), the model's first output
    std::mutex lock;
    std::vector<Scale> scales; // ascending sides; the coarse map is at the last (largest) one
};

extern "C" void CImagingBridge_setOpenCVThreads(int threads) { cv::setNumThreads(threads); }

extern "C" CImagingBridge_Segmenter *CImagingBridge_segmenterCreate(const char *modelPath, const int *sides,
                                                                   int sideCount, char *error,
                                                                   size_t errorSize) {
    CImagingBridge_Segmenter *result = nullptr;
    guarded("loading the segmentation model", error, errorSize, [&] {
        std::vector<int> wanted(sides, sides + std::max(sideCount, 0));
        if (wanted.empty()) wanted.push_back(kDeclaredSide);
        std::sort(wanted.begin(), wanted.end());
        wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
        auto segmenter = std::make_unique<CImagingBridge_Segmenter>();
        segmenter->path = modelPath;
        for (int side : wanted) {
            cv::dnn::Net net = loadNet(segmenter->path, side);
            std::vector<std::string> outputs = net.getUnconnectedOutLayersNames();
            if (outputs.empty()) throw std::runtime_error("the model has no outputs");
            segmenter->outputName = outputs.front();
            Scale scale{side, {}};
            scale.idle.push_back(std::move(net));
            segmenter->scales.push_back(std::move(scale));
        }
        result = segmenter.release();
        return 0;
    });
    return result;
}

extern "C" void CImagingBridge_segmenterDestroy(CImagingBridge_Segmenter *segmenter) {
    delete segmenter;
}

extern "C" int CImagingBridge_segmenterInputSize(const CImagingBridge_Segmenter *segmenter) {
    return segmenter->scales.back().side;
}

/// One forward pass at `scale.side`: the min-max normalised fused map (0..1; all 0 when flat).
static cv::Mat saliency(CImagingBridge_Segmenter *segmenter, Scale &scale, const cv::Mat &image) {
    const int side = scale.side;
    cv::Mat small;
    cv::resize(image, small, {side, side}, 0, 0, cv::INTER_LANCZOS4);
    // rembg's preprocessing: divide by the image maximum, then ImageNet mean and std.
    double maxValue = 0;
    cv::minMaxLoc(small.reshape(1), nullptr, &maxValue);
    cv::Mat input;
    small.convertTo(input, CV_32F, 1.0 / std::max(maxValue, 1.0));
    cv::Mat blob = cv::dnn::blobFromImage(input, 1.0, {}, {}, false, false);
    const float mean[3] = {0.485f, 0.456f, 0.406f}, deviation[3] = {0.229f, 0.224f, 0.225f};
    for (int c = 0; c < 3; c++) {
        cv::Mat plane(side, side, CV_32F, blob.ptr<float>(0, c));
        plane = (plane - mean[c]) / deviation[c];
    }
    // A net of this side from the pool (read anew when every one is in use), given back to the
    // pool however the forward pass ends.
    struct Borrowed {
        CImagingBridge_Segmenter *segmenter;
        Scale &scale;
        cv::dnn::Net net;
        ~Borrowed() {
            if (net.empty()) return;
            try {
                std::lock_guard<std::mutex> guard(segmenter->lock);
                scale.idle.push_back(std::move(net));
            } catch (...) {
                // No memory to keep it: the pool reads the model again when it needs another net.
            }
        }
    } borrowed{segmenter, scale, {}};
    {
        std::lock_guard<std::mutex> guard(segmenter->lock);
        if (!scale.idle.empty()) {
            borrowed.net = std::move(scale.idle.back());
            scale.idle.pop_back();
        }
    }
    if (borrowed.net.empty()) borrowed.net = loadNet(segmenter->path, scale.side);
    borrowed.net.setInput(blob);
    cv::Mat output = borrowed.net.forward(segmenter->outputName).clone();
    if (output.total() != size_t(side) * side) throw std::runtime_error("unexpected model output size");
    cv::Mat map(side, side, CV_32F, output.ptr<float>()), normalised;
    double low = 0, high = 1;
    cv::minMaxLoc(map, &low, &high);
    // rembg normalises the map to 0..1; a flat map means "nothing salient".
    if (high - low < 1e-6) return cv::Mat::zeros(side, side, CV_32F);
    map.convertTo(normalised, CV_32F, 1.0 / (high - low), -low / (high - low));
    return normalised;
}

extern "C" int CImagingBridge_segment(CImagingBridge_Segmenter *segmenter, const uint8_t *rgb,
                                      int width, int height, float *coarse, char *error,
                                      size_t errorSize) {
    return guarded("segmentation", error, errorSize, [&] {
        // Lanczos from at most 4x the largest input side: on the sample scenes it keeps thin
        // overlays (watermark text) from reading as salient far better than area averaging does.
        const int side = segmenter->scales.back().side;
        cv::Mat image = wrap(rgb, width, height, 3);
        if (std::max(width, height) > 4 * side) image = shrunk(image, workingScale(width, height, 4 * side));
        // Each scale's false parts are weak at the other (a small input loses thin parts, a large
        // one finds overlay text salient), so the maps are averaged at the largest side.
        cv::Mat target(side, side, CV_32F, coarse), sum = cv::Mat::zeros(side, side, CV_32F), map;
        for (Scale &scale : segmenter->scales) {
            map = saliency(segmenter, scale, image);
            if (scale.side != side) cv::resize(map, map, {side, side}, 0, 0, cv::INTER_LINEAR);
            sum += map;
        }
        sum.convertTo(target, CV_32F, 1.0 / segmenter->scales.size());
        return 0;
    });
}
