/* Atomic save of an encodings file (qsim/encodings.h): temporary file in the target's directory,
 * fsync, rename; the temporary is removed on any failure. POSIX. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/encodings_model.h"

static atomic_uint temp_counter; /* with the pid, makes temporary names unique */

static int write_all(int fd, const char * s, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Flushes the directory holding `path` so the rename itself survives a crash. Best effort: some
 * file systems refuse fsync on directories, and the file is already complete in place. */
static void sync_directory(const char * path) {
    const char * slash = strrchr(path, '/');
    size_t n = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char * dir = malloc(n + 1);
    if (dir == NULL) {
        return;
    }
    memcpy(dir, slash == NULL ? "." : path, n);
    dir[n] = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

/* A new temporary file "<path>.tmp-<pid>-<n>" opened for writing (mode 0666 less the umask, like
 * any new file); -1 with errno on failure. `tmp` has room for strlen(path) + 48 bytes. */
static int create_temporary(const char * path, char * tmp, size_t cap) {
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(tmp, cap, "%s.tmp-%ld-%u", path, (long)getpid(), atomic_fetch_add(&temp_counter, 1u));
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) {
            return fd;
        }
    }
    return -1;
}

qsim_status qsim_encodings_save(const qsim_encodings * enc, const char * path, const char * version,
                                qsim_error * err) {
    if (path == NULL) {
        qsim_error_set(err, QSIM_INVALID_ARGUMENT, "cannot save encodings: NULL path");
        return QSIM_INVALID_ARGUMENT;
    }
    char * content = NULL;
    size_t len = 0;
    qsim_status st = qsim_encodings_write(enc, version, &content, &len, err);
    if (st != QSIM_SUCCESS) {
        return st;
    }
    size_t cap = strlen(path) + 48;
    char * tmp = malloc(cap);
    if (tmp == NULL) {
        free(content);
        qsim_error_set(err, QSIM_OUT_OF_MEMORY, "out of memory saving '%s'", path);
        return QSIM_OUT_OF_MEMORY;
    }
    int fd = create_temporary(path, tmp, cap);
    int e = fd < 0 ? errno : 0;
    const char * what = "create a temporary file next to";
    if (fd >= 0) {
        what = "write";
        if (write_all(fd, content, len) != 0 || fsync(fd) != 0) {
            e = errno;
        }
        if (close(fd) != 0 && e == 0) {
            e = errno;
        }
        if (e == 0 && rename(tmp, path) != 0) {
            e = errno;
            what = "rename the temporary file onto";
        }
        if (e != 0) {
            unlink(tmp);
        }
    }
    if (e == 0) {
        sync_directory(path);
    } else {
        qsim_error_set(err, QSIM_IO_ERROR, "cannot %s '%s': %s", what, path, strerror(e));
        st = QSIM_IO_ERROR;
    }
    free(tmp);
    free(content);
    return st;
}
