//! Keeping rvsd's virtual servers in line with the configuration and the
//! health checks.
