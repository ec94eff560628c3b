import jsonpatch from "fast-json-patch";
import { assertEquals } from "../../testing/assert.ts";
import { NOCLOUD_SERIAL, OPENSTACK_ASSET_TAG } from "../shared/contract.ts";
import type { JsonObject } from "./json_patch.ts";
import { mutateVm } from "./vm_mutation.ts";

const ON = { serialInjection: true };

type Vm = {
  spec: {
    template: {
      metadata: { annotations: Record<string, string> };
      spec: {
        domain: { firmware?: { serial?: string }; chassis?: { asset?: string } };
        accessCredentials?: JsonObject[];
      };
    };
  };
};

function openstackVm(): Vm {
  const vm = JSON.parse(
    Deno.readTextFileSync(new URL("./fixtures/vm_fedora.json", import.meta.url)),
  ) as Vm;
  vm.spec.template.metadata.annotations["imds.kubevirt.io/datasource"] = "openstack";
  return vm;
}

function patched(vm: Vm): Vm {
  const mutation = mutateVm("VirtualMachine", vm as unknown as JsonObject, ON);
  return jsonpatch.applyPatch(structuredClone(vm), mutation.operations, true, false)
    .newDocument as Vm;
}

Deno.test("datasource openstack: the chassis asset tag is set and no NoCloud serial is written", () => {
  const vm = openstackVm();
  const mutation = mutateVm("VirtualMachine", vm as unknown as JsonObject, ON);
  assertEquals(mutation.warnings, []);
  assertEquals(mutation.operations, [{
    op: "add",
    path: "/spec/template/spec/domain/chassis",
    value: { asset: "OpenStack Compute" },
  }]);
  const result = patched(vm);
  assertEquals(result.spec.template.spec.domain.chassis, { asset: OPENSTACK_ASSET_TAG });
  assertEquals(result.spec.template.spec.domain.firmware?.serial, undefined);
  // Reviewing the result again changes nothing.
  assertEquals(mutateVm("VirtualMachine", result as unknown as JsonObject, ON).operations, []);
});

Deno.test("datasource openstack: a user's own asset tag is kept, with a warning", () => {
  const vm = openstackVm();
  vm.spec.template.spec.domain.chassis = { asset: "rack-42" };
  const mutation = mutateVm("VirtualMachine", vm as unknown as JsonObject, ON);
  assertEquals(mutation.operations, []);
  assertEquals(mutation.warnings, [
    'spec.template.spec.domain.chassis.asset is kept as "rack-42"; cloud-init detects the OpenStack datasource only with "OpenStack Compute" (cloudbase-init on Windows needs no detection)',
  ]);
});

Deno.test("datasource openstack: our NoCloud serial left from before is pointed out; odd values fall back to nocloud", () => {
  const vm = openstackVm();
  vm.spec.template.spec.domain.firmware = { serial: NOCLOUD_SERIAL };
  assertEquals(mutateVm("VirtualMachine", vm as unknown as JsonObject, ON).warnings, [
    "spec.template.spec.domain.firmware.serial still selects NoCloud, which cloud-init prefers to OpenStack; remove it",
  ]);
  const odd = openstackVm();
  odd.spec.template.metadata.annotations["imds.kubevirt.io/datasource"] = "ec2";
  const mutation = mutateVm("VirtualMachine", odd as unknown as JsonObject, ON);
  assertEquals(mutation.warnings, [
    'imds.kubevirt.io/datasource is "ec2"; expected "nocloud" or "openstack", so nocloud is used',
  ]);
  assertEquals(patched(odd).spec.template.spec.domain.firmware?.serial, NOCLOUD_SERIAL);
});

Deno.test("the VM's accessCredentials SSH key Secrets are recorded in an annotation that reaches the pod", () => {
  const vm = openstackVm();
  vm.spec.template.spec.accessCredentials = [
    {
      sshPublicKey: {
        source: { secret: { secretName: "alice-keys" } },
        propagationMethod: { noCloud: {} },
      },
    },
    { userPassword: { source: { secret: { secretName: "not-a-key" } } } },
    { sshPublicKey: { source: { secret: { secretName: "ops-keys" } } } },
  ];
  const result = patched(vm);
  assertEquals(
    result.spec.template.metadata.annotations["imds.kubevirt.io/access-credentials-secrets"],
    "alice-keys,ops-keys",
  );
  const again = mutateVm("VirtualMachine", result as unknown as JsonObject, ON);
  assertEquals(again.operations, []);
});
