# dist/dist.mk — included by the Makefile: `make install`, `make uninstall`, the man
# page and `make deb` (docs/install.md). The doc dir mirrors the checkout
# (README.md, docs/, examples/), so the README's and the pages' links work there.
#
#   make install [PREFIX=/usr/local] [DESTDIR=]   the binary, the static agent, the
#       sandbox rootfs, the kernel build scripts, docs, examples, man page, completion
#   make uninstall [PREFIX=...] [DESTDIR=]        removes exactly what install put there
#   make deb                                      build/provium_<version>_<arch>.deb
#
# The binary finds the rest relative to itself (runner/layout.h), so a DESTDIR tree
# or a `dpkg -x` of the package works where it lies; PREFIX is compiled in as the
# last place it looks.

PREFIX      ?= /usr/local
DESTDIR     ?=
bindir      := $(PREFIX)/bin
pkglibdir   := $(PREFIX)/lib/provium
pkgdatadir  := $(PREFIX)/share/provium
docdir      := $(PREFIX)/share/doc/provium
mandir      := $(PREFIX)/share/man
bashcompdir := $(PREFIX)/share/bash-completion/completions
VERSION     := $(shell sed -n 's/^\#define PROVIUM_VERSION "\(.*\)"$$/\1/p' runner/commands.h)

# What `provium kernel build` runs without a checkout (kernels/build.sh's inputs).
KERNEL_SCRIPTS := kernels/build.sh kernels/check-config.sh kernels/mkinitramfs.sh \
                  kernels/rootfs.sh kernels/init
KERNEL_DATA    := kernels/config kernels/config-pvm kernels/pvm-cmdline \
                  kernels/pvm-no-int3-selftest.patch
DOCS           := $(wildcard docs/*.md)
DOCS_DEVICES   := $(wildcard docs/devices/*.md)
EXAMPLES       := $(shell find examples -type f -name '*.lua' | LC_ALL=C sort)
INSTALL_FILES  := $(BUILD)/provium $(BUILD)/provium-agent $(BUILD)/rootfs $(BUILD)/provium.1

.PHONY: install uninstall installable man deb
installable: $(INSTALL_FILES)
man: $(BUILD)/provium.1

# PREFIX is compiled into runner/layout.c; the header changes only when PREFIX does.
$(BUILD)/prefix.h: FORCE
	@mkdir -p $(@D)
	@echo '#define PROVIUM_PREFIX "$(PREFIX)"' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
$(BUILD)/obj/runner/layout.o: $(BUILD)/prefix.h
$(BUILD)/obj/runner/layout.o: CPPFLAGS += -include $(BUILD)/prefix.h

# provium(1), from docs/cli.md.
$(BUILD)/provium.1: docs/cli.md dist/mkman.py runner/commands.h
	@mkdir -p $(@D)
	python3 dist/mkman.py $(VERSION) docs/cli.md > $@.tmp
	@mv $@.tmp $@

install: installable
	install -d $(DESTDIR)$(bindir) $(DESTDIR)$(pkglibdir) $(DESTDIR)$(pkgdatadir)/kernels \
	  $(DESTDIR)$(docdir)/docs/devices $(DESTDIR)$(mandir)/man1 $(DESTDIR)$(bashcompdir)
	install -m 0755 $(BUILD)/provium $(DESTDIR)$(bindir)/provium
	install -m 0755 $(BUILD)/provium-agent $(DESTDIR)$(pkglibdir)/provium-agent
	rm -rf $(DESTDIR)$(pkglibdir)/rootfs
	cp -R --preserve=mode,timestamps,links $(BUILD)/rootfs $(DESTDIR)$(pkglibdir)/rootfs
	install -m 0755 $(KERNEL_SCRIPTS) $(DESTDIR)$(pkgdatadir)/kernels/
	install -m 0644 $(KERNEL_DATA) $(DESTDIR)$(pkgdatadir)/kernels/
	install -m 0644 README.md $(DESTDIR)$(docdir)/README.md
	install -m 0644 $(DOCS) $(DESTDIR)$(docdir)/docs/
	install -m 0644 $(DOCS_DEVICES) $(DESTDIR)$(docdir)/docs/devices/
	for f in $(EXAMPLES); do install -D -m 0644 $$f $(DESTDIR)$(docdir)/$$f || exit 1; done
	install -m 0644 $(BUILD)/provium.1 $(DESTDIR)$(mandir)/man1/provium.1
	install -m 0644 dist/provium.bash $(DESTDIR)$(bashcompdir)/provium

# Only what install put there: a profile someone added to share/provium/profiles stays.
uninstall:
	rm -f $(DESTDIR)$(bindir)/provium $(DESTDIR)$(mandir)/man1/provium.1 \
	  $(DESTDIR)$(bashcompdir)/provium
	rm -rf $(DESTDIR)$(pkglibdir) $(DESTDIR)$(docdir)
	rm -f $(addprefix $(DESTDIR)$(pkgdatadir)/,$(KERNEL_SCRIPTS) $(KERNEL_DATA))
	-rmdir $(DESTDIR)$(pkgdatadir)/kernels $(DESTDIR)$(pkgdatadir) 2>/dev/null

# The Debian package, built by dpkg-buildpackage from a copy of the tree in
# build/deb (debian/); skipped when the tree has not changed since the last build.
deb:
	@./dist/mkdeb.sh $(BUILD)
