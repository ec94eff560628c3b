import jsonpatch from "fast-json-patch";
import { assertEquals } from "../../testing/assert.ts";
import { NOCLOUD_SERIAL } from "../shared/contract.ts";
import type { JsonObject } from "./json_patch.ts";
import { isKubevirtDefaultSerial } from "./nocloud_serial.ts";
import { mutateVm } from "./vm_mutation.ts";

function fixture(name: string): JsonObject {
  return JSON.parse(Deno.readTextFileSync(new URL(`./fixtures/${name}.json`, import.meta.url)));
}

const ON = { serialInjection: true };

type Vm = {
  metadata: { annotations?: Record<string, string> };
  spec: {
    template: {
      metadata: { annotations: Record<string, string> };
      spec: { domain: { firmware?: { serial?: string; uuid?: string } } };
    };
  };
};

Deno.test("an opted-in VirtualMachine without firmware gets the NoCloud serial", () => {
  const vm = fixture("vm_fedora");
  const mutation = mutateVm("VirtualMachine", vm, ON);
  assertEquals(mutation.operations, [{
    op: "add",
    path: "/spec/template/spec/domain/firmware",
    value: { serial: "ds=nocloud;s=http://169.254.169.254/v1/;dsmode=net" },
  }]);
  assertEquals(mutation.warnings, []);
  const patched = jsonpatch.applyPatch(structuredClone(vm), mutation.operations, true, false)
    .newDocument as unknown as Vm;
  assertEquals(patched.spec.template.spec.domain.firmware, { serial: NOCLOUD_SERIAL });
  // Applying the result again changes nothing.
  assertEquals(mutateVm("VirtualMachine", patched as unknown as JsonObject, ON).operations, []);
});

Deno.test("a VirtualMachineInstance with firmware but no serial gets the serial beside its uuid", () => {
  const vmi = fixture("vmi_cirros");
  const mutation = mutateVm("VirtualMachineInstance", vmi, ON);
  assertEquals(mutation.operations, [{
    op: "add",
    path: "/spec/domain/firmware/serial",
    value: NOCLOUD_SERIAL,
  }]);
  const patched = jsonpatch.applyPatch(structuredClone(vmi), mutation.operations).newDocument as {
    spec: { domain: { firmware: JsonObject } };
  };
  assertEquals(patched.spec.domain.firmware, {
    uuid: "5d307ca9-b3ef-428c-8861-06e72d69f223",
    serial: NOCLOUD_SERIAL,
  });
});

Deno.test("a serial the user wrote is kept, with a warning saying what cloud-init needs", () => {
  const withSerial = (serial: string) => {
    const vm = fixture("vm_fedora") as unknown as Vm;
    vm.spec.template.spec.domain.firmware = { serial };
    return vm as unknown as JsonObject;
  };
  const plain = mutateVm(
    "VirtualMachine",
    withSerial("ds=nocloud;s=http://169.254.169.254/v1/"),
    ON,
  );
  assertEquals(plain.operations, []);
  assertEquals(plain.warnings, [
    'spec.template.spec.domain.firmware.serial is kept as written; add ";dsmode=net" to it, or cloud-init 22.x fetches the metadata and discards it',
  ]);
  const other = mutateVm("VirtualMachine", withSerial("SN-0042"), ON);
  assertEquals(other.operations, []);
  assertEquals(other.warnings, [
    'spec.template.spec.domain.firmware.serial is kept as "SN-0042"; cloud-init uses the metadata service only with "ds=nocloud;s=http://169.254.169.254/v1/;dsmode=net"',
  ]);
  assertEquals(mutateVm("VirtualMachine", withSerial(NOCLOUD_SERIAL), ON).warnings, []);
});

Deno.test("serial injection switched off: no patch, but annotation problems are still reported", () => {
  const vm = fixture("vm_fedora") as unknown as Vm;
  vm.spec.template.metadata.annotations["imds.kubevirt.io/network-config-secret"] = "bad name";
  const mutation = mutateVm("VirtualMachine", vm as unknown as JsonObject, {
    serialInjection: false,
  });
  assertEquals(mutation.operations, []);
  assertEquals(mutation.warnings, [
    'imds.kubevirt.io/network-config-secret is "bad name"; expected NAME or NAME/KEY (a Secret in the VM\'s namespace), so it was ignored',
  ]);
});

Deno.test("VMs not opted in are unchanged; the annotation in the wrong place is pointed out", () => {
  const vm = fixture("vm_fedora") as unknown as Vm;
  delete vm.spec.template.metadata.annotations["imds.kubevirt.io/enabled"];
  assertEquals(mutateVm("VirtualMachine", vm as unknown as JsonObject, ON), {
    operations: [],
    warnings: [],
    reason: "not opted in",
  });
  vm.metadata.annotations = { "imds.kubevirt.io/enabled": "true" };
  assertEquals(mutateVm("VirtualMachine", vm as unknown as JsonObject, ON).warnings, [
    "imds.kubevirt.io/enabled is on the VirtualMachine's metadata, where it has no effect; put it on spec.template.metadata.annotations",
  ]);
  const odd = fixture("vmi_cirros") as { metadata: { annotations: Record<string, string> } };
  odd.metadata.annotations["imds.kubevirt.io/enabled"] = "True";
  const result = mutateVm("VirtualMachineInstance", odd as unknown as JsonObject, ON);
  assertEquals(result.operations, []);
  assertEquals(result.warnings.length, 1);
});

Deno.test("a VM whose domain is not an object is not patched, with a warning", () => {
  const vm = fixture("vm_fedora") as unknown as { spec: { template: { spec: JsonObject } } };
  vm.spec.template.spec.domain = "broken";
  const mutation = mutateVm("VirtualMachine", vm as unknown as JsonObject, ON);
  assertEquals(mutation.operations, []);
  assertEquals(mutation.warnings, [
    "spec.template.spec.domain.firmware.serial could not be set: a field on the way is not an object",
  ]);
});

Deno.test("KubeVirt's generated serial on an opted-in VirtualMachine is replaced by the NoCloud serial", () => {
  // What KubeVirt 1.6.1+ stores for a VM created without a serial: two random UUIDs.
  const vm = fixture("vm_fedora") as unknown as Vm;
  vm.spec.template.spec.domain.firmware = {
    uuid: "0f9f6a4c-8f0e-4c53-9a4f-2f4b1d0c2e11",
    serial: "6c1f3b0e-7d4a-4f25-b8e2-91c0d5a7e3f4",
  };
  const mutation = mutateVm("VirtualMachine", vm as unknown as JsonObject, ON);
  assertEquals(mutation.operations, [{
    op: "replace",
    path: "/spec/template/spec/domain/firmware/serial",
    value: NOCLOUD_SERIAL,
  }]);
  assertEquals(mutation.warnings, []);
  const patched = jsonpatch.applyPatch(structuredClone(vm), mutation.operations, true, false)
    .newDocument as unknown as Vm;
  assertEquals(patched.spec.template.spec.domain.firmware, {
    uuid: "0f9f6a4c-8f0e-4c53-9a4f-2f4b1d0c2e11",
    serial: NOCLOUD_SERIAL,
  });
  assertEquals(mutateVm("VirtualMachine", patched as unknown as JsonObject, ON).operations, []);
});

Deno.test("a VirtualMachineInstance started from a VM that kept KubeVirt's serial gets the NoCloud serial", () => {
  // A VM created before the chart was installed, or while the webhook was down:
  // its template still holds KubeVirt's serial, and so does each VMI it starts.
  const vmi = fixture("vmi_cirros") as { spec: { domain: { firmware: JsonObject } } };
  vmi.spec.domain.firmware.serial = crypto.randomUUID();
  const mutation = mutateVm("VirtualMachineInstance", vmi as unknown as JsonObject, ON);
  assertEquals(mutation.operations, [{
    op: "replace",
    path: "/spec/domain/firmware/serial",
    value: NOCLOUD_SERIAL,
  }]);
  assertEquals(mutation.reason, "KubeVirt's default serial replaced");
});

Deno.test("only KubeVirt's serial form is replaced: other UUID spellings and versions are the user's", () => {
  // Go's uuid.New().String(), which KubeVirt uses, and crypto.randomUUID() write the same form.
  for (let i = 0; i < 50; i++) assertEquals(isKubevirtDefaultSerial(crypto.randomUUID()), true);
  for (
    const serial of [
      "6C1F3B0E-7D4A-4F25-B8E2-91C0D5A7E3F4", // upper case
      "6c1f3b0e-7d4a-1f25-b8e2-91c0d5a7e3f4", // version 1
      "6c1f3b0e-7d4a-4f25-c8e2-91c0d5a7e3f4", // not the RFC 4122 variant
      "6c1f3b0e7d4a4f25b8e291c0d5a7e3f4", // no dashes
      " 6c1f3b0e-7d4a-4f25-b8e2-91c0d5a7e3f4",
    ]
  ) {
    assertEquals(isKubevirtDefaultSerial(serial), false, serial);
    const vm = fixture("vm_fedora") as unknown as Vm;
    vm.spec.template.spec.domain.firmware = { serial };
    const mutation = mutateVm("VirtualMachine", vm as unknown as JsonObject, ON);
    assertEquals(mutation.operations, [], serial);
    assertEquals(mutation.reason, "user's serial kept");
    assertEquals(mutation.warnings.length, 1);
  }
});
