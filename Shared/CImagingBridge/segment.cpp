// U²-Net-p through OpenCV's dnn module. A cv::dnn::Net is not safe for concurrent forward passes,
// so the segmenter keeps a small pool: each call borrows an idle net or loads another one.
#include <mutex>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "bridge_internal.hpp"

using namespace imaging;

struct CImagingBridge_Segmenter {
    std::string path;
    std::string outputName; // the fused saliency map (d0), the model's first output
    std::mutex lock;
    std::vector<cv::dnn::Net> idle;
};

static constexpr int kInputSide = 320;

static cv::dnn::Net loadNet(const std::string &path) {
    registerFastConvolution(); // before the importer builds its layers
    cv::dnn::Net net = cv::dnn::readNetFromONNX(path);
    if (net.empty()) throw std::runtime_error("the model has no layers");
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    return net;
}

extern "C" void CImagingBridge_setOpenCVThreads(int threads) { cv::setNumThreads(threads); }

extern "C" CImagingBridge_Segmenter *CImagingBridge_segmenterCreate(const char *modelPath,
                                                                   char *error, size_t errorSize) {
    CImagingBridge_Segmenter *result = nullptr;
    guarded("loading the segmentation model", error, errorSize, [&] {
        cv::dnn::Net net = loadNet(modelPath);
        std::vector<std::string> outputs = net.getUnconnectedOutLayersNames();
        if (outputs.empty()) throw std::runtime_error("the model has no outputs");
        auto segmenter = new CImagingBridge_Segmenter();
        segmenter->path = modelPath;
        segmenter->outputName = outputs.front();
        segmenter->idle.push_back(std::move(net));
        result = segmenter;
        return 0;
    });
    return result;
}

extern "C" void CImagingBridge_segmenterDestroy(CImagingBridge_Segmenter *segmenter) {
    delete segmenter;
}

extern "C" int CImagingBridge_segmenterInputSize(const CImagingBridge_Segmenter *) {
    return kInputSide;
}

extern "C" int CImagingBridge_segment(CImagingBridge_Segmenter *segmenter, const uint8_t *rgb,
                                      int width, int height, float *coarse, char *error,
                                      size_t errorSize) {
    return guarded("segmentation", error, errorSize, [&] {
        // Lanczos from at most 4x the input side: on the sample scenes it keeps thin overlays
        // (watermark text) from reading as salient far better than area averaging does.
        cv::Mat image = wrap(rgb, width, height, 3), small;
        if (std::max(width, height) > 4 * kInputSide) {
            image = shrunk(image, workingScale(width, height, 4 * kInputSide));
        }
        cv::resize(image, small, {kInputSide, kInputSide}, 0, 0, cv::INTER_LANCZOS4);
        // rembg's preprocessing: divide by the image maximum, then ImageNet mean and std.
        double maxValue = 0;
        cv::minMaxLoc(small.reshape(1), nullptr, &maxValue);
        cv::Mat input;
        small.convertTo(input, CV_32F, 1.0 / std::max(maxValue, 1.0));
        cv::Mat blob = cv::dnn::blobFromImage(input, 1.0, {}, {}, false, false);
        const float mean[3] = {0.485f, 0.456f, 0.406f}, deviation[3] = {0.229f, 0.224f, 0.225f};
        for (int c = 0; c < 3; c++) {
            cv::Mat plane(kInputSide, kInputSide, CV_32F, blob.ptr<float>(0, c));
            plane = (plane - mean[c]) / deviation[c];
        }
        cv::dnn::Net net;
        {
            std::lock_guard<std::mutex> guard(segmenter->lock);
            if (!segmenter->idle.empty()) {
                net = std::move(segmenter->idle.back());
                segmenter->idle.pop_back();
            }
        }
        if (net.empty()) net = loadNet(segmenter->path);
        cv::Mat output;
        try {
            net.setInput(blob);
            output = net.forward(segmenter->outputName).clone();
        } catch (...) {
            std::lock_guard<std::mutex> guard(segmenter->lock);
            segmenter->idle.push_back(std::move(net));
            throw;
        }
        {
            std::lock_guard<std::mutex> guard(segmenter->lock);
            segmenter->idle.push_back(std::move(net));
        }
        if (output.total() != size_t(kInputSide) * kInputSide)
            throw std::runtime_error("unexpected model output size");
        cv::Mat map(kInputSide, kInputSide, CV_32F, output.ptr<float>());
        double low = 0, high = 1;
        cv::minMaxLoc(map, &low, &high);
        cv::Mat target(kInputSide, kInputSide, CV_32F, coarse);
        // rembg normalises the map to 0..1; a flat map means "nothing salient".
        if (high - low < 1e-6) target.setTo(0);
        else map.convertTo(target, CV_32F, 1.0 / (high - low), -low / (high - low));
        return 0;
    });
}
