//! The subset of Python's pickle that Swift's `.builder` files use (protocol 2 writer;
//! reader for protocols 0–5 as far as builders need them).
