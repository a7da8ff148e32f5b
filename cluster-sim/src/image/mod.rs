//! Node images built locally: from a pulled base where a registry answers, else from a Debian
//! rootfs bootstrapped with debootstrap from the host's own apt sources.
