/* cmd_md6sum.c - placeholder until the MD6 module lands. */
#include <stdio.h>
#include "cli.h"
int cmd_md6sum(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "aemp md6sum: not built yet\n");
    return 1;
}
