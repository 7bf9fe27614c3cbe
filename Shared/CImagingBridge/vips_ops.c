// libvips side of the bridge: header probe, decode to sRGB 8-bit, encode (upscale.cpp enlarges).
// libvips operations are variadic, which Swift cannot call; these wrappers also keep every
// intermediate VipsImage local so nothing GObject-shaped crosses into Swift.
#include "CImagingBridge.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>
#include <vips/vector.h>

void CImagingBridge_setOpenCVThreads(int threads); // opencv_util.cpp

static pthread_once_t vips_once = PTHREAD_ONCE_INIT;
static int vips_start_status = 0;
static char vips_program[64] = "cyclorama";

static void start_vips(void) {
    if (VIPS_INIT(vips_program) != 0) { vips_start_status = -1; return; }
    // Images come from strangers: only the four formats Cyclorama takes (PNG, JPEG, WebP, GIF) are
    // parsed at all. Every other loader libvips was built with (ImageMagick, PDF, SVG, TIFF, FITS,
    // OpenSlide, ...) is blocked, so a file that merely claims to be one reaches none of that code.
    vips_block_untrusted_set(TRUE);
    vips_operation_block_set("VipsForeignLoad", TRUE);
    vips_operation_block_set("VipsForeignLoadPng", FALSE);
    vips_operation_block_set("VipsForeignLoadJpeg", FALSE);
    vips_operation_block_set("VipsForeignLoadWebp", FALSE);
    vips_operation_block_set("VipsForeignLoadNsgif", FALSE);
    // Each request is a fresh image: the operation cache would only hold memory.
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    // No run-time generated vector code (liborc): the gateway crashed in it once (a bad pointer
    // inside liborc-0.4.33 while two thumbnails were made at once, 2026-12-07), a class of crash
    // other libvips users report too; libvips' plain C paths give the same pixels. Measured on the
    // engine's 4000² job: no difference in time (docs/engine.md).
    vips_vector_set_enabled(FALSE);
}

int CImagingBridge_vectorPathsEnabled(void) {
    pthread_once(&vips_once, start_vips);
    return vips_vector_isenabled() ? 1 : 0;
}

static void set_error(char *error, size_t size, const char *format, ...) {
    if (!error || size == 0) return;
    va_list args;
    va_start(args, format);
    vsnprintf(error, size, format, args);
    va_end(args);
}

// Copies libvips' error buffer (trimmed to its first line) into `error` and clears it.
static void take_vips_error(char *error, size_t size, const char *context) {
    const char *buffer = vips_error_buffer();
    char first[200] = {0};
    if (buffer) {
        size_t n = strcspn(buffer, "\n");
        if (n >= sizeof first) n = sizeof first - 1;
        memcpy(first, buffer, n);
    }
    vips_error_clear();
    set_error(error, size, "%s%s%s", context, first[0] ? ": " : "", first);
}

int CImagingBridge_initialize(const char *programName, int threads) {
    snprintf(vips_program, sizeof vips_program, "%s", programName);
    pthread_once(&vips_once, start_vips);
    if (vips_start_status != 0) return CImagingBridgeStatusInternal;
    if (threads > 0) {
        vips_concurrency_set(threads);
        CImagingBridge_setOpenCVThreads(threads);
    }
    return CImagingBridgeStatusOK;
}

void CImagingBridge_free(void *buffer) { g_free(buffer); }

int CImagingBridge_probe(const uint8_t *data, size_t length, int *width, int *height,
                         char *loader, size_t loaderSize, char *error, size_t errorSize) {
    if (length == 0) {
        set_error(error, errorSize, "the image is empty (0 bytes)");
        return CImagingBridgeStatusEmptyInput;
    }
    const char *name = vips_foreign_find_load_buffer(data, length);
    if (!name) {
        vips_error_clear();
        set_error(error, errorSize, "not an image format the engine can read (%zu bytes)", length);
        return CImagingBridgeStatusUndecodable;
    }
    // The loaders start_vips leaves unblocked; anything else is named and refused here.
    static const char *allowed[] = {"VipsForeignLoadJpeg", "VipsForeignLoadPng", "VipsForeignLoadWebp",
                                    "VipsForeignLoadNsgif"};
    int known = 0;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        if (strncmp(name, allowed[i], strlen(allowed[i])) == 0) known = 1;
    }
    if (!known) {
        set_error(error, errorSize,
                  "not an image format the engine can read (%s; PNG, JPEG, WebP and GIF are)", name);
        return CImagingBridgeStatusUndecodable;
    }
    if (loader && loaderSize) snprintf(loader, loaderSize, "%s", name);
    // new_from_buffer reads the header only; pixels are decoded on first use.
    VipsImage *image = vips_image_new_from_buffer(data, length, "", NULL);
    if (!image) {
        take_vips_error(error, errorSize, "the image header is unreadable");
        return CImagingBridgeStatusUndecodable;
    }
    int w = vips_image_get_width(image), h = vips_image_get_height(image);
    if (vips_image_get_orientation_swap(image)) { int t = w; w = h; h = t; }
    *width = w;
    *height = h;
    g_object_unref(image);
    return CImagingBridgeStatusOK;
}

// The probe (a format the engine reads, a readable header), then the pixel cap.
static int probe_within(const uint8_t *data, size_t length, long maxPixels, char *error, size_t errorSize) {
    int w = 0, h = 0;
    int status = CImagingBridge_probe(data, length, &w, &h, NULL, 0, error, errorSize);
    if (status != CImagingBridgeStatusOK) return status;
    if ((long)w * (long)h > maxPixels) {
        set_error(error, errorSize, "image is %dx%d (%.1f MP); at most %.1f MP", w, h,
                  (double)w * h / 1e6, (double)maxPixels / 1e6);
        return CImagingBridgeStatusTooLarge;
    }
    return CImagingBridgeStatusOK;
}

// Replaces *image with the result of an operation, dropping the reference to the old one.
#define STEP(call, context)                                                   \
    do {                                                                      \
        VipsImage *next = NULL;                                               \
        VipsImage *in = image;                                                \
        if ((call) != 0) {                                                    \
            take_vips_error(error, errorSize, context);                       \
            g_object_unref(image);                                            \
            return status_on_failure;                                         \
        }                                                                     \
        g_object_unref(in);                                                   \
        image = next;                                                         \
    } while (0)

int CImagingBridge_decode(const uint8_t *data, size_t length, long maxPixels, int keepAlpha,
                          uint8_t **pixels, int *width, int *height, int *bands, char *error,
                          size_t errorSize) {
    *pixels = NULL;
    *bands = 3;
    int status = probe_within(data, length, maxPixels, error, errorSize);
    if (status != CImagingBridgeStatusOK) return status;
    // Truncated or corrupt files fail instead of decoding to grey.
    VipsImage *image = vips_image_new_from_buffer(data, length, "", "fail_on",
                                                  VIPS_FAIL_ON_ERROR, NULL);
    if (!image) {
        take_vips_error(error, errorSize, "the image cannot be decoded");
        return CImagingBridgeStatusUndecodable;
    }
    int status_on_failure = CImagingBridgeStatusUndecodable;
    if (vips_image_get_bands(image) > 5 || vips_image_get_bands(image) == 0) {
        set_error(error, errorSize, "images with %d channels are not supported",
                  vips_image_get_bands(image));
        g_object_unref(image);
        return CImagingBridgeStatusUnsupported;
    }
    STEP(vips_autorot(in, &next, NULL), "the image cannot be decoded");
    VipsInterpretation kind = vips_image_guess_interpretation(image);
    if (kind == VIPS_INTERPRETATION_CMYK) {
        // Embedded profile when there is one, libvips' built-in CMYK profile otherwise.
        STEP(vips_icc_transform(in, &next, "srgb", "embedded", TRUE, "input_profile", "cmyk",
                                "depth", 8, NULL),
             "the CMYK image cannot be converted to sRGB");
    } else if (kind != VIPS_INTERPRETATION_sRGB || vips_image_get_format(image) != VIPS_FORMAT_UCHAR) {
        // Grey, 16-bit, Lab, scRGB...: colourspace knows the route to 8-bit sRGB.
        STEP(vips_colourspace(in, &next, VIPS_INTERPRETATION_sRGB, NULL),
             "the image cannot be converted to sRGB");
    }
    // After the conversion to sRGB an alpha channel is the fourth band (grey + alpha became RGBA).
    const int hasAlpha = vips_image_hasalpha(image) && vips_image_get_bands(image) == 4;
    if (keepAlpha && hasAlpha) {
        *bands = 4;
    } else if (vips_image_get_bands(image) == 4 || vips_image_get_bands(image) == 2) {
        double white[3] = {255, 255, 255};
        VipsArrayDouble *background = vips_array_double_new(white, 3);
        VipsImage *next = NULL;
        int failed = vips_flatten(image, &next, "background", background, NULL);
        vips_area_unref(VIPS_AREA(background));
        if (failed) {
            take_vips_error(error, errorSize, "the alpha channel cannot be flattened");
            g_object_unref(image);
            return status_on_failure;
        }
        g_object_unref(image);
        image = next;
    }
    if (vips_image_get_bands(image) > *bands) {
        STEP(vips_extract_band(in, &next, 0, "n", *bands, NULL), "the image cannot be converted");
    } else if (vips_image_get_bands(image) == 1) {
        VipsImage *grey[3] = {image, image, image};
        VipsImage *joined = NULL;
        if (vips_bandjoin(grey, &joined, 3, NULL) != 0) {
            take_vips_error(error, errorSize, "the grey image cannot be converted");
            g_object_unref(image);
            return status_on_failure;
        }
        g_object_unref(image);
        image = joined;
    }
    if (vips_image_get_format(image) != VIPS_FORMAT_UCHAR) {
        STEP(vips_cast(in, &next, VIPS_FORMAT_UCHAR, NULL), "the image cannot be converted");
    }
    size_t size = 0;
    void *memory = vips_image_write_to_memory(image, &size);
    int outWidth = vips_image_get_width(image), outHeight = vips_image_get_height(image);
    g_object_unref(image);
    if (!memory) {
        take_vips_error(error, errorSize, "the image cannot be decoded");
        return CImagingBridgeStatusUndecodable;
    }
    if (size != (size_t)outWidth * outHeight * *bands) {
        g_free(memory);
        set_error(error, errorSize, "decoder produced %zu bytes for %dx%d", size, outWidth, outHeight);
        return CImagingBridgeStatusInternal;
    }
    *pixels = memory;
    *width = outWidth;
    *height = outHeight;
    return CImagingBridgeStatusOK;
}

static VipsImage *image_from_pixels(const uint8_t *pixels, int width, int height, int bands) {
    VipsImage *raw = vips_image_new_from_memory(pixels, (size_t)width * height * bands, width,
                                                height, bands, VIPS_FORMAT_UCHAR);
    if (!raw) return NULL;
    VipsImage *tagged = NULL;
    int failed = vips_copy(raw, &tagged, "interpretation", VIPS_INTERPRETATION_sRGB, NULL);
    g_object_unref(raw);
    return failed ? NULL : tagged;
}

int CImagingBridge_resize(const uint8_t *pixels, int width, int height, int bands, int newWidth,
                          int newHeight, int cover, uint8_t **output, char *error, size_t errorSize) {
    *output = NULL;
    if ((bands != 3 && bands != 4) || width < 1 || height < 1 || newWidth < 1 || newHeight < 1 ||
        (double)newWidth * newHeight > 400e6) {
        set_error(error, errorSize, "cannot resize %dx%dx%d to %dx%d", width, height, bands, newWidth,
                  newHeight);
        return CImagingBridgeStatusUnsupported;
    }
    VipsImage *image = image_from_pixels(pixels, width, height, bands);
    if (!image) {
        take_vips_error(error, errorSize, "resize");
        return CImagingBridgeStatusInternal;
    }
    const char *context = "resize";
    const int status_on_failure = CImagingBridgeStatusInternal;
    double hscale = (double)newWidth / width, vscale = (double)newHeight / height;
    if (cover) {
        hscale = vscale = hscale > vscale ? hscale : vscale;
    }
    if (bands == 4) {
        STEP(vips_premultiply(in, &next, NULL), context);
    }
    STEP(vips_resize(in, &next, hscale, "vscale", vscale, "kernel", VIPS_KERNEL_LANCZOS3, NULL),
         context);
    if (bands == 4) {
        STEP(vips_unpremultiply(in, &next, NULL), context);
    }
    int scaledWidth = vips_image_get_width(image), scaledHeight = vips_image_get_height(image);
    if (scaledWidth > newWidth || scaledHeight > newHeight) {
        // The centre, cropped to the new size on the axis that sticks out.
        int cropWidth = scaledWidth > newWidth ? newWidth : scaledWidth;
        int cropHeight = scaledHeight > newHeight ? newHeight : scaledHeight;
        STEP(vips_extract_area(in, &next, (scaledWidth - cropWidth) / 2,
                               (scaledHeight - cropHeight) / 2, cropWidth, cropHeight, NULL),
             context);
    }
    if (vips_image_get_width(image) != newWidth || vips_image_get_height(image) != newHeight) {
        // Rounding in vips_resize: crop or pad by the odd pixel.
        STEP(vips_embed(in, &next, 0, 0, newWidth, newHeight, "extend", VIPS_EXTEND_COPY, NULL), context);
    }
    STEP(vips_cast(in, &next, VIPS_FORMAT_UCHAR, NULL), context);
    size_t size = 0;
    void *memory = vips_image_write_to_memory(image, &size);
    g_object_unref(image);
    if (!memory) {
        take_vips_error(error, errorSize, context);
        return CImagingBridgeStatusInternal;
    }
    if (size != (size_t)newWidth * newHeight * bands) {
        g_free(memory);
        set_error(error, errorSize, "resize produced %zu bytes for %dx%d", size, newWidth, newHeight);
        return CImagingBridgeStatusInternal;
    }
    *output = memory;
    return CImagingBridgeStatusOK;
}

int CImagingBridge_encode(const uint8_t *pixels, int width, int height, int bands,
                          CImagingBridgeFormat format, uint8_t **encoded, size_t *encodedLength,
                          char *error, size_t errorSize) {
    *encoded = NULL;
    *encodedLength = 0;
    VipsImage *image = image_from_pixels(pixels, width, height, bands);
    if (!image) {
        take_vips_error(error, errorSize, "encode");
        return CImagingBridgeStatusInternal;
    }
    void *buffer = NULL;
    size_t length = 0;
    int failed = 0;
    switch (format) {
    case CImagingBridgeFormatPNG:
        // Level 3 is ~3x faster than the default 6 for a few percent more bytes.
        failed = vips_pngsave_buffer(image, &buffer, &length, "compression", 3, NULL);
        break;
    case CImagingBridgeFormatJPEG:
        if (bands == 4) { // 4 bands to JPEG means CMYK (fixtures); the pipeline never asks for it
            VipsImage *cmyk = NULL;
            failed = vips_copy(image, &cmyk, "interpretation", VIPS_INTERPRETATION_CMYK, NULL);
            if (!failed) {
                g_object_unref(image);
                image = cmyk;
            }
        }
        failed = failed || vips_jpegsave_buffer(image, &buffer, &length, "Q", 92, "optimize_coding", TRUE,
                                      NULL);
        break;
    case CImagingBridgeFormatWebP:
        failed = vips_webpsave_buffer(image, &buffer, &length, "Q", 90, NULL);
        break;
    case CImagingBridgeFormatPNG16: {
        VipsImage *wide = NULL, *tagged = NULL;
        failed = vips_linear1(image, &wide, 257.0, 0.0, "uchar", FALSE, NULL) ||
                 vips_cast(wide, &tagged, VIPS_FORMAT_USHORT, NULL);
        if (!failed) {
            VipsImage *rgb16 = NULL;
            failed = vips_copy(tagged, &rgb16, "interpretation", VIPS_INTERPRETATION_RGB16, NULL) ||
                     vips_pngsave_buffer(rgb16, &buffer, &length, "bitdepth", 16, NULL);
            if (rgb16) g_object_unref(rgb16);
        }
        if (wide) g_object_unref(wide);
        if (tagged) g_object_unref(tagged);
        break;
    }
    }
    g_object_unref(image);
    if (failed || !buffer) {
        take_vips_error(error, errorSize, "encode");
        return CImagingBridgeStatusInternal;
    }
    *encoded = buffer;
    *encodedLength = length;
    return CImagingBridgeStatusOK;
}

int CImagingBridge_thumbnail(const uint8_t *data, size_t length, int maxSide, long maxPixels, int format,
                             uint8_t **encoded, size_t *encodedLength, int *width, int *height, int *written,
                             char *error, size_t errorSize) {
    *encoded = NULL;
    *encodedLength = 0;
    int status = probe_within(data, length, maxPixels, error, errorSize);
    if (status != CImagingBridgeStatusOK) return status;
    if (maxSide < 1) {
        set_error(error, errorSize, "a thumbnail needs a size of at least 1 px; got %d", maxSide);
        return CImagingBridgeStatusUnsupported;
    }
    // vips_thumbnail rotates by the EXIF orientation, takes the first frame, and shrinks on load
    // where the format can (JPEG, WebP). Corrupt files fail instead of decoding to grey.
    VipsImage *image = NULL;
    if (vips_thumbnail_buffer((void *)data, length, &image, maxSide, "height", maxSide, "size", VIPS_SIZE_DOWN,
                              "option_string", "fail_on=error", NULL) != 0) {
        take_vips_error(error, errorSize, "the image cannot be decoded");
        return CImagingBridgeStatusUndecodable;
    }
    int status_on_failure = CImagingBridgeStatusUndecodable;
    if (vips_image_guess_interpretation(image) != VIPS_INTERPRETATION_sRGB) {
        STEP(vips_colourspace(in, &next, VIPS_INTERPRETATION_sRGB, NULL), "the image cannot be converted to sRGB");
    }
    if (vips_image_get_format(image) != VIPS_FORMAT_UCHAR) {
        STEP(vips_cast(in, &next, VIPS_FORMAT_UCHAR, NULL), "the image cannot be converted");
    }
    int alpha = vips_image_hasalpha(image) && vips_image_get_bands(image) == 4;
    if (format < 0) format = alpha ? CImagingBridgeFormatPNG : CImagingBridgeFormatJPEG;
    if (alpha && format == CImagingBridgeFormatJPEG) {
        // JPEG has no transparency: what was transparent becomes white, as on a product page.
        double white[3] = {255, 255, 255};
        VipsArrayDouble *background = vips_array_double_new(white, 3);
        VipsImage *flat = NULL;
        const int flattened = vips_flatten(image, &flat, "background", background, NULL);
        vips_area_unref(VIPS_AREA(background));
        if (flattened != 0) {
            take_vips_error(error, errorSize, "the image cannot be flattened onto white");
            g_object_unref(image);
            return status_on_failure;
        }
        g_object_unref(image);
        image = flat;
        alpha = 0;
    }
    if (!alpha && vips_image_get_bands(image) > 3) {
        STEP(vips_extract_band(in, &next, 0, "n", 3, NULL), "the image cannot be converted");
    }
    void *buffer = NULL;
    size_t size = 0;
    // No metadata: the pixels are already upright, and a kept orientation tag would turn them again.
    int failed;
    switch (format) {
    case CImagingBridgeFormatPNG:
        failed = vips_pngsave_buffer(image, &buffer, &size, "compression", 6, "strip", TRUE, NULL);
        break;
    case CImagingBridgeFormatWebP:
        failed = vips_webpsave_buffer(image, &buffer, &size, "Q", 85, "strip", TRUE, NULL);
        break;
    case CImagingBridgeFormatJPEG:
        failed = vips_jpegsave_buffer(image, &buffer, &size, "Q", 85, "optimize_coding", TRUE, "strip", TRUE, NULL);
        break;
    default:
        g_object_unref(image);
        set_error(error, errorSize, "no such output format: %d", format);
        return CImagingBridgeStatusUnsupported;
    }
    *width = vips_image_get_width(image);
    *height = vips_image_get_height(image);
    g_object_unref(image);
    if (failed || !buffer) {
        take_vips_error(error, errorSize, "the thumbnail cannot be encoded");
        return CImagingBridgeStatusInternal;
    }
    *encoded = buffer;
    *encodedLength = size;
    *written = format;
    return CImagingBridgeStatusOK;
}

int CImagingBridge_decodeRaw(const uint8_t *data, size_t length, uint8_t **pixels, int *width,
                             int *height, int *bands, char *error, size_t errorSize) {
    *pixels = NULL;
    int status_on_failure = CImagingBridgeStatusUndecodable;
    VipsImage *image = vips_image_new_from_buffer(data, length, "", "fail_on",
                                                  VIPS_FAIL_ON_ERROR, NULL);
    if (!image) {
        take_vips_error(error, errorSize, "the image cannot be decoded");
        return status_on_failure;
    }
    if (vips_image_get_format(image) != VIPS_FORMAT_UCHAR) {
        STEP(vips_cast(in, &next, VIPS_FORMAT_UCHAR, "shift", TRUE, NULL), "cast");
    }
    size_t size = 0;
    void *memory = vips_image_write_to_memory(image, &size);
    *width = vips_image_get_width(image);
    *height = vips_image_get_height(image);
    *bands = vips_image_get_bands(image);
    g_object_unref(image);
    if (!memory) {
        take_vips_error(error, errorSize, "the image cannot be decoded");
        return status_on_failure;
    }
    *pixels = memory;
    return CImagingBridgeStatusOK;
}
