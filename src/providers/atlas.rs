//! Provider client: atlas (to be written).
