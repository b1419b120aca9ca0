/* nslookup for k8py's busybox image: looks a name up through the libc resolver,
 * so /etc/resolv.conf's search list and ndots apply, as busybox 1.28's nslookup did
 * (busybox 1.29+ sends the name as typed, which is why Kubernetes' DNS debugging
 * guide pins busybox:1.28). Prints CNAMEs and A records in busybox's format.
 *   nslookup NAME      exit 0 when the name resolved, 1 otherwise
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    unsigned char buf[8192];
    char addr[INET6_ADDRSTRLEN], target[NS_MAXDNAME];
    ns_msg msg;
    ns_rr rr;
    if (argc < 2) {
        fprintf(stderr, "usage: nslookup NAME\n");
        return 2;
    }
    res_init();
    if (_res.nscount > 0) {
        inet_ntop(AF_INET, &_res.nsaddr_list[0].sin_addr, addr, sizeof addr);
        printf("Server:\t\t%s\nAddress:\t%s:53\n\n", addr, addr);
    }
    int len = res_search(argv[1], ns_c_in, ns_t_a, buf, sizeof buf);
    if (len < 0 || ns_initparse(buf, len, &msg) < 0) {
        printf("** server can't find %s: %s\n\n", argv[1], h_errno == HOST_NOT_FOUND ? "NXDOMAIN" : "SERVFAIL");
        return 1;
    }
    int found = 0;
    for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
            break;
        if (ns_rr_type(rr) == ns_t_cname &&
            ns_name_uncompress(ns_msg_base(msg), ns_msg_end(msg), ns_rr_rdata(rr), target, sizeof target) >= 0) {
            printf("%s\tcanonical name = %s\n", ns_rr_name(rr), target);
            found = 1;
        } else if (ns_rr_type(rr) == ns_t_a && ns_rr_rdlen(rr) == 4) {
            inet_ntop(AF_INET, ns_rr_rdata(rr), addr, sizeof addr);
            printf("Name:\t%s\nAddress: %s\n", ns_rr_name(rr), addr);
            found = 1;
        }
    }
    printf("\n");
    return found ? 0 : 1;
}
