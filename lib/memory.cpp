#include "graydebug/memory.h"

#include <malloc.h>

namespace graydebug {

void KeepLargeAllocationsMapped() {
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

}  // namespace graydebug
