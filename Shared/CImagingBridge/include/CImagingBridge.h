#ifndef CIMAGINGBRIDGE_H
#define CIMAGINGBRIDGE_H
// The imaging bridge: plain C over libvips (decode, encode) and C++ over OpenCV (dnn segmentation,
// matting, watermark inversion, compositing, shadows) plus our own upscaler. Swift sees only this header, so glib and C++
// stay out of the Swift module. Pixel buffers are interleaved 8-bit, row-major, no padding.
// Functions that can fail return 0 on success or a CImagingBridgeStatus code and write a message
// for people into `error` (at most `errorSize` bytes, NUL-terminated).

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma clang assume_nonnull begin

typedef enum {
    CImagingBridgeStatusOK = 0,
    CImagingBridgeStatusEmptyInput = 1,
    CImagingBridgeStatusUndecodable = 2,
    CImagingBridgeStatusTooLarge = 3,
    CImagingBridgeStatusUnsupported = 4,
    CImagingBridgeStatusInternal = 5,
} CImagingBridgeStatus;

/// Starts libvips once (idempotent, thread-safe) and sets the worker thread count of libvips
/// and OpenCV (0 keeps the library defaults). Returns 0 or a status.
int CImagingBridge_initialize(const char *programName, int threads);

/// Frees a buffer returned by this bridge.
void CImagingBridge_free(void *_Nullable buffer);

// MARK: libvips

/// Reads only the header of an encoded image: its size after EXIF orientation and its loader
/// name (e.g. "jpegload_buffer"), so oversized inputs are refused before any pixel is decoded.
int CImagingBridge_probe(const uint8_t *data, size_t length, int *width, int *height,
                         char *_Nullable loader, size_t loaderSize, char *error, size_t errorSize);

/// Decodes to sRGB, 8 bits: honours EXIF orientation, converts 16-bit, CMYK (with its ICC profile
/// when present), grey and Lab inputs. An alpha channel is kept when `keepAlpha` is set (4 bands,
/// straight alpha) and flattened onto white otherwise; `*bands` says which (3 or 4).
/// Refuses images of more than `maxPixels`. `*pixels` is malloc'd (free with CImagingBridge_free).
int CImagingBridge_decode(const uint8_t *data, size_t length, long maxPixels, int keepAlpha,
                          uint8_t *_Nullable *_Nonnull pixels, int *width, int *height, int *bands,
                          char *error, size_t errorSize);

/// Enlarges by an integer factor with a locally bounded cubic (sharp, halo-free; upscale.cpp),
/// premultiplied when `bands` is 4. `*output` is malloc'd, (width*factor) x (height*factor).
int CImagingBridge_upscale(const uint8_t *pixels, int width, int height, int bands, int factor,
                           uint8_t *_Nullable *_Nonnull output, char *error, size_t errorSize);

/// Resizes to `newWidth` x `newHeight` with Lanczos-3, premultiplied when `bands` is 4. With
/// `cover` 0 each axis is scaled on its own; with 1 both by the same factor, the smallest that
/// covers the new size, and the centre is kept (what sticks out is cropped). `*output` is malloc'd.
int CImagingBridge_resize(const uint8_t *pixels, int width, int height, int bands, int newWidth,
                          int newHeight, int cover, uint8_t *_Nullable *_Nonnull output, char *error,
                          size_t errorSize);

/// Output formats for CImagingBridge_encode.
typedef enum {
    CImagingBridgeFormatPNG = 0,
    CImagingBridgeFormatJPEG = 1,
    CImagingBridgeFormatWebP = 2,
    /// 16 bits per channel PNG (fixtures only).
    CImagingBridgeFormatPNG16 = 3,
} CImagingBridgeFormat;

/// Encodes 3- or 4-band pixels. A 4-band JPEG is written as CMYK (used for test fixtures). `*encoded` is malloc'd (g_malloc'd memory is copied first).
int CImagingBridge_encode(const uint8_t *pixels, int width, int height, int bands,
                          CImagingBridgeFormat format, uint8_t *_Nullable *_Nonnull encoded,
                          size_t *encodedLength, char *error, size_t errorSize);

/// An encoded image made to fit: the long side at most `maxSide` (never enlarged), EXIF
/// orientation applied, the first frame of an animation, in sRGB, without metadata, encoded as
/// `format` (a CImagingBridgeFormat: PNG, JPEG — transparency flattened onto white — or WebP), or
/// with `format` -1 as PNG when it has transparency, else JPEG (`*written` says which). JPEG and
/// WebP shrink while loading, so a large photo is never decoded whole. Refuses images of more than
/// `maxPixels` (judged from the header) and anything but PNG, JPEG, WebP and GIF. `*encoded` is
/// g_malloc'd (free with CImagingBridge_free).
int CImagingBridge_thumbnail(const uint8_t *data, size_t length, int maxSide, long maxPixels, int format,
                             uint8_t *_Nullable *_Nonnull encoded, size_t *encodedLength, int *width,
                             int *height, int *written, char *error, size_t errorSize);

// MARK: OpenCV

/// A pool of OpenCV dnn networks for one ONNX model; thread-safe (each forward pass borrows a net).
typedef struct CImagingBridge_Segmenter CImagingBridge_Segmenter;

/// Loads a U²-Net-style ONNX model (1x3x320x320 input) to run at each of `sides` (128..16383; the
/// model's declared side is rewritten for the others). NULL (and a message) when it cannot be loaded.
CImagingBridge_Segmenter *_Nullable CImagingBridge_segmenterCreate(const char *modelPath, const int *sides,
                                                                   int sideCount, char *error,
                                                                   size_t errorSize);
void CImagingBridge_segmenterDestroy(CImagingBridge_Segmenter *_Nullable segmenter);

/// The side of the maps `CImagingBridge_segment` writes: the largest of the segmenter's sides.
int CImagingBridge_segmenterInputSize(const CImagingBridge_Segmenter *segmenter);

/// Runs the network at each side on RGB pixels; writes the mean of the min-max normalised saliency
/// maps (0..1), at the largest side, to `coarse` (side x side).
int CImagingBridge_segment(CImagingBridge_Segmenter *segmenter, const uint8_t *rgb, int width,
                           int height, float *coarse, char *error, size_t errorSize);

/// Classical fallback: a background model fitted on the image border, colour distance, flood fill
/// from the border. Writes a side x side foreground map in 0..1 to `coarse`.
int CImagingBridge_segmentClassical(const uint8_t *rgb, int width, int height, int side,
                                    float *coarse, char *error, size_t errorSize);

/// Refines a coarse side x side map into the alpha at full resolution: a guided filter on the image
/// (coefficients at a working size), a cap on pixels that are mostly background colour where the
/// map is unsure, and near-0/near-1 values snapped. Writes alpha.
int CImagingBridge_refineMatte(const uint8_t *rgb, int width, int height, const float *coarse,
                               int side, uint8_t *alpha, char *error, size_t errorSize);

/// Detects a tiled semi-transparent overlay from its repetition and inverts the blend in place.
/// `*found` is set to 1 when an overlay was found and removed.
int CImagingBridge_removeTiledWatermark(uint8_t *rgb, int width, int height, int *found,
                                        char *error, size_t errorSize);

/// Shadow presets; the values match Swift's ShadowPreset order.
typedef enum {
    CImagingBridgeShadowNone = 0,
    CImagingBridgeShadowMinimal = 1,
    CImagingBridgeShadowSoft = 2,
    CImagingBridgeShadowDramatic = 3,
} CImagingBridgeShadow;

/// Renders a shadow from the alpha: writes the background's darkening (0 = none, 255 = black).
int CImagingBridge_renderShadow(const uint8_t *alpha, int width, int height,
                                CImagingBridgeShadow preset, uint8_t *darkening, char *error,
                                size_t errorSize);

/// Composites with edge colour decontamination. With `transparent` the output is RGBA (the shadow,
/// if any, becomes semi-transparent black); otherwise RGB on the colour. `shadow` may be NULL.
int CImagingBridge_composite(const uint8_t *rgb, const uint8_t *alpha,
                             const uint8_t *_Nullable shadow, int width, int height,
                             int transparent, uint8_t red, uint8_t green, uint8_t blue,
                             uint8_t *output, char *error, size_t errorSize);

// MARK: Scoring helpers

/// Decodes without any conversion except orientation: 8-bit with the image's own band count.
int CImagingBridge_decodeRaw(const uint8_t *data, size_t length,
                             uint8_t *_Nullable *_Nonnull pixels, int *width, int *height,
                             int *bands, char *error, size_t errorSize);

/// Erodes a 0/255 mask with a size x size kernel (ellipse or square). Outside the image counts as
/// foreground (`outsideIsForeground`, border replicated) or as background.
int CImagingBridge_erode(const uint8_t *mask, int width, int height, int ellipse, int size,
                         int outsideIsForeground, uint8_t *output, char *error, size_t errorSize);

/// For every non-zero pixel, the Euclidean distance to the nearest zero pixel (OpenCV's
/// DIST_L2 with DIST_MASK_PRECISE); zero pixels get 0.
int CImagingBridge_distanceTransform(const uint8_t *mask, int width, int height, float *output,
                                     char *error, size_t errorSize);

#pragma clang assume_nonnull end

#ifdef __cplusplus
}
#endif

#endif
