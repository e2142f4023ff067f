/*
 * Test-only LD_PRELOAD shim: lets an unmodified votecast binary use IPv4 multicast under
 * qemu-user 7.2 (Debian 12), which mistranslates two of the socket options it sets.
 * Loaded into the *guest* only (qemu -E LD_PRELOAD=...), by tests/mixed_arch.rs through
 * boards/ci.sh. Never shipped in a board artifact.
 *
 * 1. IP_ADD_MEMBERSHIP / IP_DROP_MEMBERSHIP with a 12-byte struct ip_mreqn (join by
 *    interface index, what socket2's join_multicast_v4_n passes): qemu declares the
 *    guest's imr_ifindex as abi_long, so on a 64-bit guest it expects 16 bytes, does not
 *    copy the index of a 12-byte struct, and the kernel sees an uninitialised index
 *    (ENODEV). On 64-bit guests we pass the same struct padded to 16 bytes with the index
 *    as a long, which qemu copies; a real kernel reads the first 12 bytes and accepts it
 *    too (optlen >= sizeof(struct ip_mreqn)). 32-bit guests are passed through unchanged.
 * 2. IP_MULTICAST_IF is not emulated before QEMU 10.0 (ENOPROTOOPT for every argument
 *    form). We try it first; only on ENOPROTOOPT do we pin the socket to the interface
 *    that owns the given address with SO_BINDTODEVICE, which qemu passes through. The
 *    effect for a socket that only sends to the group is the same: every multicast
 *    datagram leaves through that interface (lo in the tests) and no other.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*setsockopt_fn)(int, int, int, const void *, socklen_t);

static setsockopt_fn real_setsockopt(void)
{
    static setsockopt_fn real;
    if (!real)
        real = (setsockopt_fn)dlsym(RTLD_NEXT, "setsockopt");
    return real;
}

/* The name of the interface holding IPv4 address `addr`, into `name` (IFNAMSIZ). */
static int interface_of(struct in_addr addr, char *name)
{
    struct ifaddrs *list, *ifa;
    int found = -1;
    if (getifaddrs(&list) != 0)
        return -1;
    for (ifa = list; ifa; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr && ifa->ifa_addr->sa_family == AF_INET &&
            ((struct sockaddr_in *)ifa->ifa_addr)->sin_addr.s_addr == addr.s_addr) {
            strncpy(name, ifa->ifa_name, IFNAMSIZ - 1);
            name[IFNAMSIZ - 1] = '\0';
            found = 0;
            break;
        }
    }
    freeifaddrs(list);
    return found;
}

int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
    setsockopt_fn real = real_setsockopt();
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    if (level == IPPROTO_IP && (name == IP_ADD_MEMBERSHIP || name == IP_DROP_MEMBERSHIP) &&
        len == sizeof(struct ip_mreqn) && sizeof(long) == 8) {
        const struct ip_mreqn *m = value;
        struct {
            struct in_addr multiaddr, address;
            long ifindex;
        } padded;
        padded.multiaddr = m->imr_multiaddr;
        padded.address = m->imr_address;
        padded.ifindex = m->imr_ifindex;
        return real(fd, level, name, &padded, sizeof padded);
    }
    if (level == IPPROTO_IP && name == IP_MULTICAST_IF && len == sizeof(struct in_addr)) {
        char ifname[IFNAMSIZ];
        int r = real(fd, level, name, value, len);
        if (r == 0 || errno != ENOPROTOOPT)
            return r;
        if (interface_of(*(const struct in_addr *)value, ifname) != 0) {
            errno = EADDRNOTAVAIL;
            return -1;
        }
        return real(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname) + 1);
    }
    return real(fd, level, name, value, len);
}
