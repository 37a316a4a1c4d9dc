//! Provider client: onezone (to be written).
