#ifndef CIMAGINGBRIDGE_CHECKS_H
#define CIMAGINGBRIDGE_CHECKS_H

// The imaging bridge's test hooks, for ImagingTests only: declared here, out of the production
// header. They are built into CImagingBridge (they reach its internals: the engine's own
// convolution layer, the striped filters), so a test target that links it can call them.

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Test support: runs one random stride-1 convolution (kernel x kernel, dilation, symmetric pad,
/// bias, optionally a fused ReLU) through OpenCV's own layer and through the engine's faster one
/// (convolution.cpp). Reports the largest absolute difference, the largest reference value and
/// whether the Winograd path ran.
int CImagingBridge_convolutionCheck(int channels, int outputs, int height, int width, int kernel,
                                    int dilation, int pad, int relu, double *maxDifference,
                                    double *maxReference, int *usedWinograd, char *error,
                                    size_t errorSize);

/// Test support: runs the ONNX model at `modelPath` on a fixed random input as the engine loads it
/// and again with OpenCV's own convolution layer. Reports the number of convolution layers, how
/// many of the engine's run as its own layer (convolution.cpp), and the largest output difference.
int CImagingBridge_modelConvolutionCheck(const char *modelPath, int *convolutions, int *fast,
                                         double *maxDifference, char *error, size_t errorSize);

/// Test support: filters a random width x height image whole and in stripes over the threads
/// (bridge_internal.hpp's `striped`); kind 0 is an 8-bit median of `size`, 1 a float box mean of
/// `size`, 2 a float Gaussian of sigma size / 4. Reports the largest difference and largest value.
int CImagingBridge_stripedFilterCheck(int width, int height, int kind, int size, double *maxDifference,
                                      double *maxValue, char *error, size_t errorSize);

/// Test support: whether libvips runs run-time generated vector code (liborc) in this process,
/// once the bridge started it (it should not).
int CImagingBridge_vectorPathsEnabled(void);

#ifdef __cplusplus
}
#endif

#endif
