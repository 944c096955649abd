//! rvsadm: ipvsadm-compatible syntax and output over the rvs API.
