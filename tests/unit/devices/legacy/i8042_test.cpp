// Tests for the i8042 keyboard controller with its PS/2 keyboard and mouse: controller commands,
// the probe sequences of Linux's i8042, atkbd and psmouse drivers, translation, IRQ 1/12 edges,
// the reset line, and snapshots.
#include "devices/legacy/i8042.hpp"

#include <gtest/gtest.h>
#include <linux/input-event-codes.h>

#include <vector>

#include "fakes/counting_irq_line.hpp"

namespace vireo::devices {
namespace {

using testing::CountingIrqLine;
using B = std::vector<uint8_t>;

class I8042Test : public ::testing::Test {
  protected:
    I8042Test() { make(); }
    void make() {
        kbd_irq = std::make_shared<CountingIrqLine>();
        aux_irq = std::make_shared<CountingIrqLine>();
        ctl = std::make_unique<I8042>(kbd_irq, aux_irq, [this] { ++resets; });
    }

    uint8_t status() {
        uint8_t v = 0;
        ctl->read(I8042::kCommandOffset, {&v, 1});
        return v;
    }
    uint8_t data() {
        uint8_t v = 0;
        ctl->read(I8042::kDataOffset, {&v, 1});
        return v;
    }
    void command(uint8_t c) { ctl->write(I8042::kCommandOffset, {&c, 1}); }
    void put(uint8_t d) { ctl->write(I8042::kDataOffset, {&d, 1}); }
    // Everything in the output buffer, as a polling driver reads it.
    B drain() {
        B out;
        for (int i = 0; i < 256 && (status() & I8042::kStatusOutputFull); ++i)
            out.push_back(data());
        return out;
    }
    // i8042_command(): a controller command with an optional parameter, returning the reply.
    B controller(uint8_t c, std::optional<uint8_t> param = std::nullopt) {
        command(c);
        if (param) put(*param);
        return drain();
    }
    uint8_t ctr() { return controller(0x20).at(0); }

    std::shared_ptr<CountingIrqLine> kbd_irq;
    std::shared_ptr<CountingIrqLine> aux_irq;
    std::unique_ptr<I8042> ctl;
    int resets = 0;
};

TEST_F(I8042Test, PowerOnState) {
    EXPECT_EQ(status(), I8042::kStatusUnlocked | I8042::kStatusSystem);
    EXPECT_EQ(ctr(), I8042::kInitialCtr);
    EXPECT_EQ(status() & I8042::kStatusCommand, I8042::kStatusCommand);  // last write was 0x20 to 0x64
    uint8_t unused = 0;
    ctl->read(2, {&unused, 1});
    EXPECT_EQ(unused, 0xFF);
}

// i8042_controller_check/selftest/init and i8042_check_aux/check_mux, as Linux runs them.
TEST_F(I8042Test, LinuxControllerProbe) {
    EXPECT_TRUE(drain().empty());            // i8042_flush
    EXPECT_EQ(controller(0xAA), (B{0x55}));  // self-test
    uint8_t c = ctr();
    EXPECT_EQ(ctr(), c);  // two reads agree
    c = static_cast<uint8_t>((c | I8042::kCtrKbdDisable) & ~I8042::kCtrKbdInt);
    c = static_cast<uint8_t>(c & ~I8042::kCtrAuxInt);
    controller(0x60, c);
    EXPECT_EQ(ctr(), c);

    // AUX: loopback returns the byte, marked as aux data.
    command(0xD3);
    put(0x5A);
    ASSERT_TRUE(status() & I8042::kStatusOutputFull);
    EXPECT_TRUE(status() & I8042::kStatusAuxData);
    EXPECT_EQ(data(), 0x5A);
    // Bit assignment test.
    controller(0xA7);
    EXPECT_TRUE(ctr() & I8042::kCtrAuxDisable);
    controller(0xA8);
    EXPECT_FALSE(ctr() & I8042::kCtrAuxDisable);
    // AUX IRQ delivery test: with AUXINT on, the loop byte raises IRQ 12.
    controller(0x60, static_cast<uint8_t>(ctr() | I8042::kCtrAuxInt));
    aux_irq->reset_counts();
    command(0xD3);
    put(0xA5);
    EXPECT_TRUE(aux_irq->level());
    EXPECT_FALSE(kbd_irq->level());
    EXPECT_EQ(data(), 0xA5);
    EXPECT_FALSE(aux_irq->level());
    EXPECT_EQ(aux_irq->raises(), 1u);
    // Active multiplexing probe: the third loop byte comes back unchanged, so there is no MUX.
    EXPECT_EQ(controller(0xD3, 0xF0), (B{0xF0}));
    EXPECT_EQ(controller(0xD3, 0x56), (B{0x56}));
    EXPECT_EQ(controller(0xD3, 0xA4), (B{0xA4}));
    // Keyboard port test and port enables.
    EXPECT_EQ(controller(0xAB), (B{0x00}));
    EXPECT_EQ(controller(0xA9), (B{0x00}));
    controller(0xAE);
    EXPECT_FALSE(ctr() & I8042::kCtrKbdDisable);
    controller(0xAD);
    EXPECT_TRUE(ctr() & I8042::kCtrKbdDisable);
    EXPECT_EQ(ctl->counters().guest_errors, 0u);
}

// atkbd_probe/atkbd_activate through a translating controller: GETID answers 0xAB 0x41.
TEST_F(I8042Test, LinuxKeyboardProbeAndTyping) {
    controller(0x60, I8042::kInitialCtr);
    put(0xF2);
    EXPECT_EQ(drain(), (B{0xFA, 0xAB, 0x41}));
    put(0xED);
    EXPECT_EQ(drain(), (B{0xFA}));
    put(0x02);  // Num Lock LED
    EXPECT_EQ(drain(), (B{0xFA}));
    EXPECT_EQ(ctl->keyboard_leds(), 0x02);
    put(0xF3);
    put(0x00);
    EXPECT_EQ(drain(), (B{0xFA, 0xFA}));
    put(0xF4);
    EXPECT_EQ(drain(), (B{0xFA}));

    kbd_irq->reset_counts();
    EXPECT_TRUE(ctl->key_event(KEY_A, true));
    EXPECT_TRUE(kbd_irq->level());
    EXPECT_FALSE(status() & I8042::kStatusAuxData);
    EXPECT_EQ(data(), 0x1E);  // set 2 0x1C translated
    EXPECT_FALSE(kbd_irq->level());
    ctl->key_event(KEY_A, false);
    EXPECT_EQ(drain(), (B{0x9E}));
    ctl->key_event(KEY_RIGHTCTRL, true);
    ctl->key_event(KEY_RIGHTCTRL, false);
    EXPECT_EQ(drain(), (B{0xE0, 0x1D, 0xE0, 0x9D}));
    ctl->key_event(KEY_PAUSE, true);
    EXPECT_EQ(drain(), (B{0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5}));
    ctl->key_event(KEY_F7, true);
    EXPECT_EQ(drain(), (B{0x41}));
    // One edge per byte for an interrupt-driven driver that reads one byte per interrupt.
    EXPECT_EQ(kbd_irq->raises(), 1u + 1u + 4u + 6u + 1u);
}

TEST_F(I8042Test, UntranslatedSet2AndScancodeSets) {
    controller(0x60, I8042::kCtrKbdInt | I8042::kCtrSystem);  // XLATE off
    put(0xF2);
    EXPECT_EQ(drain(), (B{0xFA, 0xAB, 0x83}));
    put(0xF0);
    put(0x00);
    EXPECT_EQ(drain(), (B{0xFA, 0xFA, 0x02}));
    ctl->key_event(KEY_A, false);
    EXPECT_EQ(drain(), (B{0xF0, 0x1C}));
    put(0xF0);
    put(0x01);
    EXPECT_EQ(drain(), (B{0xFA, 0xFA}));
    ctl->key_event(KEY_A, true);
    EXPECT_EQ(drain(), (B{0x1E}));
    put(0xF0);
    put(0x03);  // set 3 is refused
    EXPECT_EQ(drain(), (B{0xFA, 0xFE}));
    put(0xF0);
    put(0x00);
    EXPECT_EQ(drain(), (B{0xFA, 0xFA, 0x01}));
}

TEST_F(I8042Test, KeyboardCommands) {
    put(0xEE);
    EXPECT_EQ(drain(), (B{0xEE}));
    put(0xFF);
    EXPECT_EQ(drain(), (B{0xFA, 0xAA}));
    put(0xFE);
    EXPECT_EQ(drain(), (B{0xAA}));  // resend the last byte
    put(0xF5);                      // disable scanning
    EXPECT_EQ(drain(), (B{0xFA}));
    EXPECT_FALSE(ctl->key_event(KEY_B, true));
    EXPECT_TRUE(drain().empty());
    put(0xF6);  // defaults: scanning stays off
    put(0xF4);
    EXPECT_EQ(drain(), (B{0xFA, 0xFA}));
    EXPECT_TRUE(ctl->key_event(KEY_B, true));
    EXPECT_EQ(drain(), (B{0x30}));
    put(0x12);  // not a command
    EXPECT_EQ(drain(), (B{0xFE}));
    put(0xFB);  // set 3 key type command: acknowledged
    EXPECT_EQ(drain(), (B{0xFA}));
}

TEST_F(I8042Test, RepliesGoBeforeQueuedKeys) {
    ctl->key_event(KEY_A, true);
    ctl->key_event(KEY_B, true);
    ctl->key_event(KEY_C, true);
    put(0xF2);  // A is in the controller's output buffer; B and C wait in the keyboard
    EXPECT_EQ(drain(), (B{0x1E, 0xFA, 0xAB, 0x41, 0x30, 0x2E}));
}

TEST_F(I8042Test, DisabledPortHoldsDataUntilEnabled) {
    controller(0xAD);
    ctl->key_event(KEY_C, true);
    EXPECT_FALSE(status() & I8042::kStatusOutputFull);
    EXPECT_EQ(controller(0x20).size(), 1u);  // controller replies still come through
    command(0xAE);
    EXPECT_EQ(drain(), (B{0x2E}));
}

TEST_F(I8042Test, InterruptsFollowTheCommandByte) {
    controller(0x60, I8042::kCtrSystem | I8042::kCtrTranslate);  // no interrupts: polling
    ctl->key_event(KEY_A, true);
    EXPECT_TRUE(status() & I8042::kStatusOutputFull);
    EXPECT_FALSE(kbd_irq->level());
    command(0x60);
    put(I8042::kInitialCtr);  // the pending 0x1E now raises IRQ 1
    EXPECT_TRUE(kbd_irq->level());
    EXPECT_EQ(data(), 0x1E);
}

TEST_F(I8042Test, KeyBufferOverflowIsCounted) {
    int taken = 0;
    for (int i = 0; i < 100; ++i)
        taken += ctl->key_event(KEY_A, i % 2 == 0);
    EXPECT_LT(taken, 100);
    EXPECT_EQ(ctl->counters().keys_dropped, static_cast<uint64_t>(100 - taken));
    EXPECT_EQ(drain().size(), static_cast<size_t>(taken));  // translated: one byte per event
}

// psmouse: reset, GETID, IntelliMouse and Explorer unlock sequences, enable, packets.
TEST_F(I8042Test, LinuxMouseProbeAndPackets) {
    auto aux = [&](uint8_t b) {
        command(0xD4);
        put(b);
    };
    aux(0xFF);
    B reply = drain();
    EXPECT_EQ(reply, (B{0xFA, 0xAA, 0x00}));
    aux(0xF2);
    EXPECT_EQ(drain(), (B{0xFA, 0x00}));
    for (uint8_t rate : {200, 100, 80}) {
        aux(0xF3);
        aux(rate);
    }
    EXPECT_EQ(drain().size(), 6u);
    aux(0xF2);
    EXPECT_EQ(drain(), (B{0xFA, 0x03}));  // IntelliMouse
    for (uint8_t rate : {200, 200, 80}) {
        aux(0xF3);
        aux(rate);
    }
    drain();
    aux(0xF2);
    EXPECT_EQ(drain(), (B{0xFA, 0x04}));  // IntelliMouse Explorer
    aux(0xE8);
    aux(0x03);
    aux(0xE6);
    aux(0xF3);
    aux(100);
    aux(0xF4);
    EXPECT_EQ(drain(), (B{0xFA, 0xFA, 0xFA, 0xFA, 0xFA, 0xFA}));

    aux_irq->reset_counts();
    ctl->mouse_event(5, 3, 1, Ps2Mouse::kLeft | Ps2Mouse::kSide);
    EXPECT_TRUE(aux_irq->level());
    EXPECT_TRUE(status() & I8042::kStatusAuxData);
    // dy 3 down is -3 in PS/2 (up positive); wheel 1 step down; button 4 in byte 3.
    EXPECT_EQ(drain(), (B{0x08 | 0x01 | 0x20, 5, 0xFD, 0x11}));
    EXPECT_EQ(aux_irq->raises(), 4u);
    ctl->mouse_event(600, -10, 0, 0);
    EXPECT_EQ(drain(), (B{0x08, 255, 10, 0x00, 0x08, 255, 0, 0x00, 0x08, 90, 0, 0x00}));
}

TEST_F(I8042Test, MouseModes) {
    auto aux = [&](uint8_t b) {
        command(0xD4);
        put(b);
    };
    aux(0xF4);
    drain();
    ctl->mouse_event(-3, 0, 0, Ps2Mouse::kRight);
    EXPECT_EQ(drain(), (B{0x08 | 0x02 | 0x10, 0xFD, 0x00}));  // plain mouse: 3-byte packets
    aux(0xE9);
    EXPECT_EQ(drain(), (B{0xFA, 0x20 | 0x01, 0x02, 100}));  // enabled, right button, 4 c/mm, 100/s
    aux(0xE7);                                              // 2:1 scaling
    drain();
    ctl->mouse_event(4, 0, 0, Ps2Mouse::kRight);
    EXPECT_EQ(drain(), (B{0x08 | 0x02, 6, 0}));
    aux(0xF0);  // remote mode: nothing streams
    drain();
    ctl->mouse_event(7, 7, 0, 0);
    EXPECT_TRUE(drain().empty());
    aux(0xEB);  // read data
    EXPECT_EQ(drain(), (B{0xFA, 0x08 | 0x20, 7, 0xF9}));
    aux(0xEE);  // wrap mode echoes
    drain();
    aux(0x42);
    EXPECT_EQ(drain(), (B{0x42}));
    aux(0xEC);
    EXPECT_EQ(drain(), (B{0xFA}));
    aux(0x00);
    EXPECT_EQ(drain(), (B{0xFE}));
    aux(0xFE);
    EXPECT_EQ(drain(), (B{0xFE}));
}

TEST_F(I8042Test, MouseDisabledPortAndReenableByD4) {
    controller(0xA7);
    command(0xD4);
    put(0xF2);  // writing to the mouse enables the aux interface again
    EXPECT_EQ(drain(), (B{0xFA, 0x00}));
    EXPECT_FALSE(ctr() & I8042::kCtrAuxDisable);
}

TEST_F(I8042Test, ResetLine) {
    command(0xFE);
    EXPECT_EQ(resets, 1);
    command(0xFF);  // pulses nothing
    command(0xF1);  // bit 0 set: not the reset line
    EXPECT_EQ(resets, 1);
    command(0xF0);  // pulses all four, reset included
    EXPECT_EQ(resets, 2);
    EXPECT_EQ(controller(0xD0).at(0) & 0x03, 0x03);
    command(0xD1);
    put(0x02);  // reset line low
    EXPECT_EQ(resets, 3);
    command(0xD1);
    put(0x03);
    EXPECT_EQ(resets, 3);
    EXPECT_EQ(ctl->counters().resets, 3u);
}

TEST_F(I8042Test, OtherControllerCommands) {
    EXPECT_EQ(controller(0xA4), (B{0xF1}));
    EXPECT_EQ(controller(0xC0), (B{0x80}));
    EXPECT_EQ(controller(0xE0), (B{0x00}));
    controller(0x61, 0x5A);  // controller RAM byte 1
    EXPECT_EQ(controller(0x21), (B{0x5A}));
    command(0xD2);
    put(0x77);  // as if from the keyboard
    EXPECT_FALSE(status() & I8042::kStatusAuxData);
    EXPECT_EQ(data(), 0x77);
    controller(0x12);  // unknown
    controller(0xDD);  // A20 off: ignored
    uint8_t b = 0;
    ctl->write(1, {&b, 1});  // 0x61 is not ours
    EXPECT_EQ(ctl->counters().guest_errors, 3u);
    EXPECT_EQ(data(), 0x77);  // an empty buffer reads its last byte again
}

TEST_F(I8042Test, ResetRestoresPowerOn) {
    controller(0x60, 0x00);
    ctl->key_event(KEY_A, true);
    put(0xED);
    ctl->reset();
    EXPECT_EQ(ctr(), I8042::kInitialCtr);
    EXPECT_TRUE(drain().empty());
    EXPECT_FALSE(kbd_irq->level());
}

TEST_F(I8042Test, SnapshotMidStream) {
    auto aux = [&](uint8_t b) {
        command(0xD4);
        put(b);
    };
    aux(0xF4);
    drain();
    ctl->key_event(KEY_H, true);
    ctl->key_event(KEY_I, true);
    ctl->mouse_event(1, 1, 0, 0);
    put(0xED);  // LED command waiting for its argument
    nlohmann::json state = ctl->save_state();
    B expected = drain();

    auto kbd2 = std::make_shared<CountingIrqLine>();
    auto aux2 = std::make_shared<CountingIrqLine>();
    I8042 restored(kbd2, aux2, {});
    ASSERT_TRUE(restored.restore_state(state).ok());
    EXPECT_TRUE(kbd2->level());
    B got;
    for (int i = 0; i < 64; ++i) {
        uint8_t s = 0;
        restored.read(I8042::kCommandOffset, {&s, 1});
        if (!(s & I8042::kStatusOutputFull)) break;
        uint8_t v = 0;
        restored.read(I8042::kDataOffset, {&v, 1});
        got.push_back(v);
    }
    EXPECT_EQ(got, expected);
    uint8_t leds = 0x04;
    restored.write(I8042::kDataOffset, {&leds, 1});  // the LED argument completes there
    EXPECT_EQ(restored.keyboard_leds(), 0x04);

    nlohmann::json bad = state;
    bad["keyboard"]["set"] = 0;
    EXPECT_FALSE(restored.restore_state(bad).ok());
    bad = state;
    bad["mouse"]["id"] = 2;
    EXPECT_FALSE(restored.restore_state(bad).ok());
    bad = state;
    bad["replies"] = nlohmann::json::array({nlohmann::json::array({1, 7})});
    EXPECT_FALSE(restored.restore_state(bad).ok());
    bad = state;
    bad["pending_command"] = 0xAA;
    EXPECT_FALSE(restored.restore_state(bad).ok());
    bad = state;
    bad.erase("mouse");
    EXPECT_FALSE(restored.restore_state(bad).ok());
    EXPECT_EQ(restored.keyboard_leds(), 0x04);  // the refused restores changed nothing
}

}  // namespace
}  // namespace vireo::devices
