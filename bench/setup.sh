#!/usr/bin/env bash
# What the benchmarks need on a fresh Debian machine, on top of lab/setup.sh (openssh-server, the npm packages):
# Ansible from Debian's own packages (bookworm: ansible-core 2.14, the version issue 8 measured), GNU time for
# the controller's CPU time and peak memory, procps (ps). Safe to run again: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

# `ansible` brings community.general (ini_file, task 12) on top of ansible-core; python3-apt is what Ansible's
# apt module needs (without it the module installs it on the host by itself); util-linux has script(1), the
# pseudo-terminal the listr2 reporter is measured on.
bash lab/setup.sh ansible ansible-core python3-apt time procps openssh-client util-linux
ansible-playbook --version | sed -n 1p
