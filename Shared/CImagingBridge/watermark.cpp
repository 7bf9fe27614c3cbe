// Tiled watermark removal (placeholder until the detector lands).
#include "bridge_internal.hpp"

extern "C" int CImagingBridge_removeTiledWatermark(uint8_t *, int, int, int *found, char *,
                                                   size_t) {
    *found = 0;
    return 0;
}
