// The PCIe topology of `ipukit run`: a host (CPU, host DRAM, a host bridge) and one IPU card
// on a root port, a multi-function endpoint:
//
//   host DRAM ── root complex (hb0, 00.0)
//                   │ rp0 (00:01.0)
//                   ║ link gen4 x16
//                ipu (01:00.0) nvme  — the NVMe controller the host sees (BAR0, MSI-X)
//                    (01:00.1) dma   — the IPU's DMA engine
//                    (01:00.2) nic   — the network function the NVMe/TCP traffic leaves by
//
// Every DMA the NVMe function does to host memory (PRPs/SGLs through the IOMMU) crosses the
// ipu link and host DRAM and is charged there (PciFabric.traffic); the IPU's own memory
// (iobuf buffers, PDU buffers) is its DRAM.
import type { Iommu, PhysicalMemory } from '@ipukit/memory'
import { nvmeFunctionSpec } from '@ipukit/nvme'
import { PciFabric, type PciFunction } from '@ipukit/pcie'

export interface IpuTopology {
  fabric: PciFabric
  /** the NVMe endpoint function presented to the host */
  nvme: PciFunction
  /** the IPU's DMA engine function */
  dma: PciFunction
  /** the IPU's network function */
  nic: PciFunction
}

export interface IpuTopologyOptions {
  physical: PhysicalMemory
  iommu: Iommu
  /** the IPU link; default gen 4 x16 */
  link?: { gen: 1 | 2 | 3 | 4 | 5 | 6; width: 1 | 2 | 4 | 8 | 16 }
  /** MSI-X vectors of the NVMe function; default 65 */
  vectors?: number
}

export function buildIpuTopology(o: IpuTopologyOptions): IpuTopology {
  const fabric = new PciFabric({ physical: o.physical, iommu: o.iommu, cpu: { vendor: 'intel', family: 6 } })
  const hb = fabric.addHostBridge({ name: 'hb0', vendorId: 0x8086, deviceId: 0x2020 })
  const link = o.link ?? { gen: 4, width: 16 }
  fabric.addEndpoint(hb.addRootPort({ name: 'rp0', link }), {
    name: 'ipu',
    link,
    functions: [
      { ...nvmeFunctionSpec({ vectors: o.vectors ?? 65, vendorId: 0x8086, deviceId: 0x1453 }), fn: 0, name: 'nvme' },
      // a DMA controller (class 08h, subclass 01h) and an Ethernet controller (02h, 00h)
      { fn: 1, name: 'dma', vendorId: 0x8086, deviceId: 0x1454, classCode: 0x080100 },
      { fn: 2, name: 'nic', vendorId: 0x8086, deviceId: 0x1452, classCode: 0x020000 },
    ],
  })
  fabric.enumerate()
  return { fabric, nvme: fabric.get('nvme'), dma: fabric.get('dma'), nic: fabric.get('nic') }
}
