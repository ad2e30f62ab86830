/*
 * test_install.c - `make install` into a staging DESTDIR, then a program
 * built against the staged tree with pkg-config, linked both statically
 * and with the shared library, runs. Only in the plain build (the
 * sanitizer build would reinstall instrumented objects).
 */
#include "test.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int run(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "    command failed (%d): %s\n", rc, cmd);
    return rc;
}

static int exists(const char *dir, const char *rel)
{
    char p[1024];
    struct stat st;
    snprintf(p, sizeof p, "%s%s", dir, rel);
    return stat(p, &st) == 0;
}

TEST(install_and_build_against_it)
{
    const char *build = t_build_dir();
    size_t bl = strlen(build);
    if (bl > 5 && !strcmp(build + bl - 5, "-asan"))
        SKIP("not in the sanitizer build (%s): the plain build installs and links the same files",
             build);
    char stage[] = "/tmp/aemp-stage-XXXXXX";
    REQUIRE(mkdtemp(stage));
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "make -s BUILD=%s install PREFIX=/opt/aemp DESTDIR=%s >/dev/null", build,
             stage);
    REQUIRE(run(cmd) == 0);
    CHECK(exists(stage, "/opt/aemp/include/aemp.h"));
    CHECK(exists(stage, "/opt/aemp/lib/libaemp.a"));
    CHECK(exists(stage, "/opt/aemp/lib/libaemp.so"));
    CHECK(exists(stage, "/opt/aemp/lib/libaemp.so.0"));
    CHECK(exists(stage, "/opt/aemp/lib/pkgconfig/aemp.pc"));
    CHECK(exists(stage, "/opt/aemp/bin/aemp"));
    /* a program that makes a node and a port and sends itself a message */
    snprintf(cmd, sizeof cmd, "%s/prog.c", stage);
    FILE *f = fopen(cmd, "w");
    REQUIRE(f);
    fputs("#include <aemp.h>\n#include <ev.h>\n#include <stdio.h>\n"
          "static int got(aemp_port_t *p, json_t *m, void *ud) {\n"
          "  (void)p; (void)ud; printf(\"%s\\n\", json_string_value(json_array_get(m, 0)));\n"
          "  ev_break(EV_DEFAULT, EVBREAK_ALL); return AEMP_DONE; }\n"
          "int main(void) { aemp_node_config_t c = {0}; c.bind = \"127.0.0.1:0\";\n"
          "  c.secret = \"s\"; c.secret_len = 1;\n"
          "  aemp_node_t *n = aemp_node_new(EV_DEFAULT, &c, NULL);\n"
          "  if (!n || aemp_node_start(n)) return 1;\n"
          "  aemp_port_t *p = aemp_port_new(n, got, NULL);\n"
          "  aemp_sendf(n, aemp_port_id(p), \"[s]\", \"installed\");\n"
          "  ev_run(EV_DEFAULT, 0); aemp_node_destroy(n); return 0; }\n",
          f);
    fclose(f);
    const char *pc = "PKG_CONFIG_SYSROOT_DIR=%s PKG_CONFIG_PATH=%s/opt/aemp/lib/pkgconfig";
    char env[1024];
    snprintf(env, sizeof env, pc, stage, stage);
    snprintf(cmd, sizeof cmd,
             "%s sh -c 'cc -o %s/prog-static %s/prog.c $(pkg-config --cflags aemp) "
             "%s/opt/aemp/lib/libaemp.a $(pkg-config --libs-only-other --libs-only-l --static aemp | "
             "sed s/-laemp//)' && %s/prog-static | grep -qx installed",
             env, stage, stage, stage, stage);
    CHECK(run(cmd) == 0);
    snprintf(cmd, sizeof cmd,
             "%s sh -c 'cc -o %s/prog-shared %s/prog.c $(pkg-config --cflags --libs aemp) -lev' && "
             "LD_LIBRARY_PATH=%s/opt/aemp/lib %s/prog-shared | grep -qx installed",
             env, stage, stage, stage, stage);
    CHECK(run(cmd) == 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", stage);
    run(cmd);
}
