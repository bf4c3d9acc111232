//! The statistics core: pure functions over plain data (no I/O, no database).
