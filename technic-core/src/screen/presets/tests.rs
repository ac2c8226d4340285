//! Every preset on crafted bars: ones that must pass it and ones that must not.
