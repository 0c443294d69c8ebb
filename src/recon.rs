//! Data types of Swift's recon endpoints and the health client built on them.
