//! `ringsmith dash`: the dashboard. The UI (views, key handling) is kept apart from the
//! backend it drives (ring files and the recon client from the core crate).
