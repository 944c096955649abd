// SPDX-License-Identifier: MIT OR Apache-2.0
// The rvs XDP program: hand every frame to the AF_XDP socket bound to the
// queue it arrived on; a queue without a socket lets the frame through to
// the kernel (XDP_PASS), which keeps the host reachable (the exception path).
//
// Built by build.rs with `clang -O2 -g -target bpf`; loaded and attached by
// src/af_xdp/program.rs. The program name is how rvs recognises its own
// program left on an interface by a crashed run: keep it in step with
// `PROGRAM_NAME` there.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} rvs_xsks SEC(".maps");

SEC("xdp")
int rvs_xsk_redir(struct xdp_md *ctx)
{
	return bpf_redirect_map(&rvs_xsks, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
