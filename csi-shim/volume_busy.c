/* Volumes with a call in progress (csi.h): a second call on the same
 * volume while one runs is answered ABORTED, as CSI asks, instead of
 * racing it (two NodeStageVolume of one volume would attach it twice).
 * At most CSI_THREADS calls run at once, so a small table does. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "cluster.h"
#include "csi.h"

static pthread_mutex_t busy_lock = PTHREAD_MUTEX_INITIALIZER;
static char busy[CSI_THREADS][CLUSTER_NAME_MAX];   /* "" : free slot */

int csi_volume_claim(const char *id)
{
	int free_slot = -1, ret = 0;

	if (!id[0] || strlen(id) >= CLUSTER_NAME_MAX)
		return 0;   /* refused by the handler, nothing to guard */
	pthread_mutex_lock(&busy_lock);
	for (int i = 0; i < CSI_THREADS && ret == 0; i++) {
		if (!strcmp(busy[i], id))
			ret = -EBUSY;
		else if (!busy[i][0] && free_slot < 0)
			free_slot = i;
	}
	if (ret == 0 && free_slot >= 0)
		memcpy(busy[free_slot], id, strlen(id) + 1);
	pthread_mutex_unlock(&busy_lock);
	return ret;
}

void csi_volume_release(const char *id)
{
	if (!id[0] || strlen(id) >= CLUSTER_NAME_MAX)
		return;
	pthread_mutex_lock(&busy_lock);
	for (int i = 0; i < CSI_THREADS; i++)
		if (!strcmp(busy[i], id)) {
			busy[i][0] = '\0';
			break;
		}
	pthread_mutex_unlock(&busy_lock);
}
