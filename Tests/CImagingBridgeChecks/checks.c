// Declarations only (include/CImagingBridgeChecks.h); the definitions are in CImagingBridge.
#include "CImagingBridgeChecks.h"
