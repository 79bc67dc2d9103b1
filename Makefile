# aionfs developer entry points. `make demo` and `make test` work on a fresh
# Debian 12 machine as root: missing system packages are installed with apt.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_MOUNT ?= $(HOME)/Aion

.PHONY: install sysdeps testdeps benchdeps test demo bench lint clean vendor-spec units

install: $(STAMP)

# System packages: only what is missing, and apt-get update only when needed.
sysdeps:
	@need=""; \
	command -v fusermount3 >/dev/null || need="$$need fuse3"; \
	pkg-config --exists fuse3 2>/dev/null || need="$$need libfuse3-dev pkg-config"; \
	command -v cc >/dev/null || need="$$need gcc libc6-dev"; \
	$(PYTHON) -c 'import ensurepip' 2>/dev/null || need="$$need python3-venv"; \
	test -f "$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" || need="$$need python3-dev"; \
	if [ -n "$$need" ]; then \
	  echo "installing system packages:$$need"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need; \
	fi

# What only the tests use: rsync and vim (copies and saves into the mount, as users make
# them), a real desktop for the file-manager test (Xvfb, PCManFM, a D-Bus session), gio
# (what GTK applications read of xattrs, and `gio save`) and systemd-analyze (the units);
# Thunar and tumbler (the Xfce file manager and its thumbnailer daemon); Nautilus (GNOME's);
# Dolphin and KIO's thumbnail workers (KDE's; without recommends: not all of KDE); xwininfo
# (x11-utils: the windows a file manager opened, to see that no error dialog came).
testdeps:
	@set -e; need=""; \
	command -v rsync >/dev/null || need="$$need rsync"; \
	command -v vim >/dev/null || need="$$need vim"; \
	command -v Xvfb >/dev/null || need="$$need xvfb"; \
	command -v pcmanfm >/dev/null || need="$$need pcmanfm"; \
	command -v thunar >/dev/null || need="$$need thunar"; \
	test -x /usr/lib/x86_64-linux-gnu/tumbler-1/tumblerd || need="$$need tumbler"; \
	command -v nautilus >/dev/null || need="$$need nautilus"; \
	command -v xwininfo >/dev/null || need="$$need x11-utils"; \
	lean=""; command -v dolphin >/dev/null || lean="dolphin kio-extras"; \
	command -v dbus-run-session >/dev/null || need="$$need dbus"; \
	command -v gio >/dev/null || need="$$need libglib2.0-bin"; \
	command -v systemd-analyze >/dev/null || need="$$need systemd"; \
	if [ -n "$$need$$lean" ]; then \
	  echo "installing system packages for the tests:$$need $$lean"; \
	  apt-get update -qq; \
	fi; \
	if [ -n "$$need" ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need; \
	fi; \
	if [ -n "$$lean" ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$lean; \
	fi

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory sysdeps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# The unit tier first (no FUSE, no network: seconds), then the mount tier in four
# workers: its tests mostly wait (on plan budgets, poll intervals, windows), so four
# run side by side on 2 cores in about a quarter of the time, each with its own
# emulator, mount, cache and screen.
test: install testdeps
	$(BIN)/ruff check aionfs tests
	$(BIN)/pytest -q -p no:cacheprovider tests/unit
	$(BIN)/pytest -q -p no:cacheprovider -n 4 --durations=8 --ignore=tests/unit

demo: install
	$(BIN)/aionfs demo --mountpoint "$(DEMO_MOUNT)"

# What only the benchmarks use: rclone, to compare with its mount on the same files.
benchdeps:
	@command -v rclone >/dev/null || { echo "installing rclone for the benchmarks"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rclone; }

bench: install testdeps benchdeps
	$(BIN)/python -m tests.bench

# (the code is wrapped by hand, not by `ruff format`: the check is the linter's)
lint: install
	$(BIN)/ruff check aionfs tests

vendor-spec: install
	$(BIN)/python tests/contract/vendor_spec.py ../shared/aionvision-api

# The systemd user units shipped in systemd/ (a test checks they are current).
units: install
	$(BIN)/python -m aionfs.daemon.service systemd

clean:
	rm -rf $(VENV) build *.egg-info
