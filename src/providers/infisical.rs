//! Provider client: infisical (to be written).
