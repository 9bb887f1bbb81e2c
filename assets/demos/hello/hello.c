/* Greets each name on the command line, or the world when given none. */
#include <stdio.h>
#include <sys/utsname.h>

int main(int argc, char **argv) {
    struct utsname host;
    const char *machine = uname(&host) == 0 ? host.machine : "unknown";

    if (argc < 2) {
        printf("Hello, world! (static binary on %s)\n", machine);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        printf("Hello, %s! (static binary on %s)\n", argv[i], machine);
    }
    return 0;
}
