/* vm_spare.c — one KVM VM made ahead of the next restore. KVM_CREATE_VM is the
 * largest single step of a restore in the simulated host (10 of the VMM's 25 ms,
 * docs/vmm.md "What a restore costs"), and it needs nothing a restore knows: the
 * VM's memory, irqchip, devices and vCPUs all come later. Restores come in series (a fixture's VMs, a pool being
 * refilled, a test restoring again), so a restored VM's destroy starts a thread that
 * makes one, and the next vm_create_from takes it (vm.c), waiting for one being made
 * rather than making a second. At most one exists per process; one never taken is
 * closed at exit with the process's other fds.
 *
 * KVM binds a VM to the memory of the process that made it (its ioctls fail with EIO
 * in a forked child), so a child forgets the spare and the one being made. */
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t made = PTHREAD_COND_INITIALIZER;
static struct {
	int kvm_fd, vm_fd; /* the spare, or -1 */
	bool making;
	struct vm_spare_stats stats;
} sp = {-1, -1, false, {0, 0}};

static void before_fork(void) { pthread_mutex_lock(&lock); }
static void parent_after_fork(void) { pthread_mutex_unlock(&lock); }
static void child_after_fork(void)
{
	pthread_mutex_init(&lock, NULL);
	pthread_cond_init(&made, NULL);
	if (sp.vm_fd >= 0)
		close(sp.vm_fd);
	if (sp.kvm_fd >= 0)
		close(sp.kvm_fd);
	sp.kvm_fd = sp.vm_fd = -1;
	sp.making = false; /* its thread stayed in the parent */
}

static void register_fork_handlers(void)
{
	pthread_atfork(before_fork, parent_after_fork, child_after_fork);
}

static void *make(void *arg)
{
	(void)arg;
	int kfd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int vfd = kfd >= 0 ? ioctl(kfd, KVM_CREATE_VM, 0) : -1;
	if (vfd < 0 && kfd >= 0) {
		close(kfd);
		kfd = -1;
	}
	pthread_mutex_lock(&lock);
	sp.kvm_fd = kfd;
	sp.vm_fd = vfd;
	sp.making = false;
	if (vfd >= 0)
		sp.stats.made++;
	pthread_cond_broadcast(&made);
	pthread_mutex_unlock(&lock);
	return NULL;
}

void vm_spare_prepare(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, register_fork_handlers);
	pthread_mutex_lock(&lock);
	if (sp.making || sp.vm_fd >= 0) {
		pthread_mutex_unlock(&lock);
		return;
	}
	sp.making = true;
	pthread_mutex_unlock(&lock);
	pthread_attr_t a;
	pthread_t t;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, make, NULL)) {
		pthread_mutex_lock(&lock);
		sp.making = false;
		pthread_mutex_unlock(&lock);
	}
	pthread_attr_destroy(&a);
}

bool vm_spare_take(int *kvm_fd, int *vm_fd)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2; /* a host so slow that one takes longer: make another */
	pthread_mutex_lock(&lock);
	while (sp.making && pthread_cond_timedwait(&made, &lock, &until) != ETIMEDOUT)
		;
	bool ok = sp.vm_fd >= 0;
	if (ok) {
		*kvm_fd = sp.kvm_fd;
		*vm_fd = sp.vm_fd;
		sp.kvm_fd = sp.vm_fd = -1;
		sp.stats.taken++;
	}
	pthread_mutex_unlock(&lock);
	return ok;
}

void vm_spare_stats(struct vm_spare_stats *out)
{
	pthread_mutex_lock(&lock);
	*out = sp.stats;
	pthread_mutex_unlock(&lock);
}
