pub mod chromium;
