/*
 * Test support: lets nokhwa (through the `v4l` crate) read a PipeWire
 * video node via PipeWire's V4L2 emulation (libpw-v4l2.so), which works by
 * interposing libc's open/ioctl/mmap. Preload it after libpw-v4l2.so:
 *
 *   LD_PRELOAD=/usr/lib/x86_64-linux-gnu/pipewire-0.3/v4l2/libpw-v4l2.so:target/v4l2-shim.so
 *
 * Three gaps it fills (see ../shared/FIELD-NOTES.md, "Camera"):
 *  1. the v4l crate calls syscall(SYS_ioctl, ...), which no preload sees:
 *     such calls are routed to ioctl(), which the emulation interposes;
 *  2. PipeWire 0.3.65 answers VIDIOC_ENUM_FRAMEINTERVALS with ENOTTY: the
 *     shim answers with the one interval VIDIOC_G_PARM reports;
 *  3. a non-blocking VIDIOC_DQBUF right after poll() can fail with EAGAIN:
 *     retried for up to a second.
 * Test-only: nothing of it ships in sandstream.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/videodev2.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int shim_ioctl(int fd, unsigned long request, void *arg)
{
    if (request == VIDIOC_ENUM_FRAMEINTERVALS) {
        struct v4l2_frmivalenum *ival = arg;
        struct v4l2_streamparm parm;
        if (ival->index != 0) {
            errno = EINVAL;
            return -1;
        }
        memset(&parm, 0, sizeof parm);
        parm.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        if (ioctl(fd, VIDIOC_G_PARM, &parm) < 0)
            return -1;
        ival->type = V4L2_FRMIVAL_TYPE_DISCRETE;
        ival->discrete = parm.parm.capture.timeperframe;
        return 0;
    }
    if (request == VIDIOC_DQBUF) {
        for (int tries = 0; tries < 1000; tries++) {
            int result = ioctl(fd, request, arg);
            if (result == 0 || errno != EAGAIN)
                return result;
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
        errno = EAGAIN;
        return -1;
    }
    return ioctl(fd, request, arg);
}

long syscall(long number, ...)
{
    va_list args;
    va_start(args, number);
    long a = va_arg(args, long), b = va_arg(args, long), c = va_arg(args, long);
    long d = va_arg(args, long), e = va_arg(args, long), f = va_arg(args, long);
    va_end(args);
    if (number == SYS_ioctl)
        return shim_ioctl((int)a, (unsigned long)b, (void *)c);
    static long (*real_syscall)(long, ...);
    if (!real_syscall)
        real_syscall = dlsym(RTLD_NEXT, "syscall");
    return real_syscall(number, a, b, c, d, e, f);
}
