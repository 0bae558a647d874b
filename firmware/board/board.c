// cellguard's sensor and relay board firmware: ATmega328P (Arduino Uno) at 16 MHz, plain avr-libc.
//
// Speaks the rig's protocol (shared/spec/seed-rig.md, "Arduino serial protocol") so the rig's old
// sketch and this firmware are interchangeable for the edge, plus a backward-compatible extension
// (docs/board-protocol.md has the whole protocol):
//   - every line the board sends starts with the rig's three fields and stays a valid rig line; the
//     extension adds fields after them (a parser of the rig's line ignores unknown fields) and ends
//     with `,Ardu_Crc:XX` (CRC-8, polynomial 0x07, over every byte before that field);
//   - the first line after a reset carries `Ardu_Hello:cellguard-board/<version>` and the reset cause;
//     the answer to `?`, `R` and `T` carries `Ardu_Re:1` (it reflects every command before it);
//   - host commands are parsed by grammar, as they have no terminator: `pin:value` pairs (1..2 digit
//     pin, value one digit 0 or 1), separated by `&` or nothing, and one-letter extension commands an
//     old edge never sends: `H` heartbeat, `?` status now, `R` re-arm after a trip, `Tnnnn` heartbeat
//     timeout in ms (4 digits).
// Fail-safe: every output is low (relays de-energised) after a reset. Once the first heartbeat has
// arrived, no heartbeat for more than the timeout (default 500 ms) opens the relays (pins 3, 4, 5;
// pump and fan on 6 and 7 stay as they are) and sends a line with `Ardu_Fs:hb_lost`. Relay closing
// commands are then refused until heartbeats resume and the host sends `R`. Once armed, the
// ground-fault input (debounced) opens the relays too, with `Ardu_Fs:gnd_fault`; closing is refused
// until the input clears, heartbeats arrive and the host sends `R`. The AVR watchdog (250 ms)
// resets the board if the main loop stops; the reset leaves every output low.
//
// Pins: A0 Ardu_Temp1, A1 Ardu_Temp2, A2 Ardu_Press (AVcc reference); D2 the insulation monitor's
// alarm contact (internal pull-up; closed to GND = alarm, so an unwired input reads "no fault");
// D3..D7 outputs (rig: relay2 3, relay3 4, relay1 5, pump 6, fan 7).
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/wdt.h>
#include <stdbool.h>
#include <stdint.h>
#include <util/atomic.h>
#include <util/crc16.h>

#ifndef CELLGUARD_BOARD_HEARTBEAT_MS
#define CELLGUARD_BOARD_HEARTBEAT_MS 500
#endif
#define BOARD_VERSION "1"
#define REPORT_PERIOD_MS 1000u
#define GND_FAULT_DEBOUNCE_MS 20u
#define TIMEOUT_MIN_MS 100u
#define TIMEOUT_MAX_MS 5000u

// Outputs on PORTD: pins 3..7. Relays are 3, 4, 5; pump 6 and fan 7 survive a trip.
#define OUTPUT_MASK ((uint8_t)0xF8)
#define RELAY_MASK ((uint8_t)((1 << 3) | (1 << 4) | (1 << 5)))
#define GND_FAULT_BIT PD2

// ---------------------------------------------------------------------------------------------
// Reset cause: MCUSR must be read and cleared, and the watchdog stopped, before main (after a
// watchdog reset it stays enabled at its shortest period).
static uint8_t reset_flags __attribute__((section(".noinit")));
void early_init(void) __attribute__((naked, used, section(".init3")));
void early_init(void) {
  reset_flags = MCUSR;
  MCUSR = 0;
  wdt_disable();
}

// ---------------------------------------------------------------------------------------------
// Time: Timer0 in CTC mode, 1 kHz.
static volatile uint32_t ticks_ms;
ISR(TIMER0_COMPA_vect) { ++ticks_ms; }

static uint32_t now_ms(void) {
  uint32_t t;
  ATOMIC_BLOCK(ATOMIC_RESTORESTATE) { t = ticks_ms; }
  return t;
}

// ---------------------------------------------------------------------------------------------
// UART 9600 8N1 with interrupt-driven ring buffers (uint8_t indices wrap by themselves).
static volatile uint8_t rx_buf[64];
static volatile uint8_t rx_head, rx_tail;
static volatile uint8_t tx_buf[256];
static volatile uint8_t tx_head, tx_tail;

ISR(USART_RX_vect) {
  const uint8_t byte = UDR0;
  const uint8_t next = (uint8_t)((rx_head + 1) & 63);
  if (next != rx_tail) {  // full: the byte is lost (the host sends at most a few bytes at a time)
    rx_buf[rx_head] = byte;
    rx_head = next;
  }
}

ISR(USART_UDRE_vect) {
  if (tx_tail == tx_head) {
    UCSR0B &= (uint8_t) ~(1 << UDRIE0);
    return;
  }
  UDR0 = tx_buf[tx_tail];
  tx_tail = (uint8_t)(tx_tail + 1);
}

static bool rx_pop(uint8_t* byte) {
  bool got = false;
  ATOMIC_BLOCK(ATOMIC_RESTORESTATE) {
    if (rx_tail != rx_head) {
      *byte = rx_buf[rx_tail];
      rx_tail = (uint8_t)((rx_tail + 1) & 63);
      got = true;
    }
  }
  return got;
}

// Queues a whole line or nothing: a line cut in half would only confuse the host.
static uint16_t lines_dropped;
static void tx_line(const char* text, uint8_t length) {
  ATOMIC_BLOCK(ATOMIC_RESTORESTATE) {
    const uint8_t used = (uint8_t)(tx_head - tx_tail);
    if ((uint16_t)used + length > 255u) {
      ++lines_dropped;
    } else {
      for (uint8_t i = 0; i < length; ++i) {
        tx_buf[tx_head] = (uint8_t)text[i];
        tx_head = (uint8_t)(tx_head + 1);
      }
      UCSR0B |= (uint8_t)(1 << UDRIE0);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Line formatting.
typedef struct {
  char text[136];
  uint8_t length;
} Line;

static void put(Line* line, const char* text) {
  while (*text && line->length < sizeof line->text - 16) line->text[line->length++] = *text++;
}
static void put_uint(Line* line, uint16_t value) {
  char digits[6];
  uint8_t n = 0;
  do {
    digits[n++] = (char)('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (n > 0 && line->length < sizeof line->text - 16) line->text[line->length++] = digits[--n];
}
static char hex_digit(uint8_t v) { return (char)(v < 10 ? '0' + v : 'A' + v - 10); }
static void put_hex8(Line* line, uint8_t value) {
  line->text[line->length++] = hex_digit(value >> 4);
  line->text[line->length++] = hex_digit(value & 15);
}
// Appends `,Ardu_Crc:XX` CR LF; the CRC covers every byte before the comma. Room for it is kept.
static void finish_and_send(Line* line) {
  uint8_t crc = 0;
  for (uint8_t i = 0; i < line->length; ++i) crc = _crc8_ccitt_update(crc, (uint8_t)line->text[i]);
  const char* tail = ",Ardu_Crc:";
  while (*tail) line->text[line->length++] = *tail++;
  put_hex8(line, crc);
  line->text[line->length++] = '\r';
  line->text[line->length++] = '\n';
  tx_line(line->text, line->length);
}

// ---------------------------------------------------------------------------------------------
// Inputs.
static uint16_t adc_read(uint8_t channel) {
  ADMUX = (uint8_t)((1 << REFS0) | (channel & 7));  // AVcc reference, right adjusted
  ADCSRA |= (uint8_t)(1 << ADSC);
  while (ADCSRA & (1 << ADSC)) {
  }
  return ADC;
}

static bool gnd_fault_raw(void) { return (PIND & (1 << GND_FAULT_BIT)) == 0; }

// ---------------------------------------------------------------------------------------------
// Fail-safe state.
enum FailSafe { FS_OFF, FS_ARMED, FS_HB_LOST, FS_GND_FAULT };
static uint8_t fail_safe = FS_OFF;
static uint32_t last_heartbeat_ms;
static bool heartbeat_since_trip;
static uint16_t heartbeat_timeout_ms = CELLGUARD_BOARD_HEARTBEAT_MS;
static bool gnd_fault;  // debounced

enum LineKind { LINE_HELLO, LINE_REPORT, LINE_REPLY };
static void send_line(uint8_t kind) {
  Line line = {.length = 0};
  put(&line, "Ardu_Temp1:");
  put_uint(&line, adc_read(0));
  put(&line, ",Ardu_Temp2:");
  put_uint(&line, adc_read(1));
  put(&line, ",Ardu_Press:");
  put_uint(&line, adc_read(2));
  put(&line, gnd_fault ? ",Ardu_GndFault:1" : ",Ardu_GndFault:0");
  if (kind == LINE_HELLO) {
    put(&line, ",Ardu_Hello:cellguard-board/" BOARD_VERSION ",Ardu_Reset:");
    if (reset_flags & (1 << WDRF)) {
      put(&line, "wdt");
    } else if (reset_flags & (1 << BORF)) {
      put(&line, "bod");
    } else if (reset_flags & (1 << EXTRF)) {
      put(&line, "ext");
    } else {
      put(&line, "por");
    }
  } else {
    put(&line, ",Ardu_Out:");
    put_hex8(&line, (uint8_t)(PIND & OUTPUT_MASK));  // read back from the pins, not the latch
    put(&line, fail_safe == FS_OFF       ? ",Ardu_Fs:off"
               : fail_safe == FS_ARMED   ? ",Ardu_Fs:armed"
               : fail_safe == FS_HB_LOST ? ",Ardu_Fs:hb_lost"
                                         : ",Ardu_Fs:gnd_fault");
    put(&line, ",Ardu_Hb:");
    put_uint(&line, heartbeat_timeout_ms);
    if (kind == LINE_REPLY) put(&line, ",Ardu_Re:1");  // the answer to `?`, `R` or `T`: after them
  }
  finish_and_send(&line);
}

static void write_pin(uint8_t pin, bool high) {
  if (pin < 3 || pin > 7) return;  // not an output of this board (0, 1: UART; 2: ground-fault input)
  const uint8_t bit = (uint8_t)(1 << pin);
  if (high) {
    if ((bit & RELAY_MASK) && (fail_safe == FS_HB_LOST || fail_safe == FS_GND_FAULT))
      return;  // until re-armed
    PORTD |= bit;
  } else {
    PORTD &= (uint8_t)~bit;
  }
}

static void trip(void) {
  PORTD &= (uint8_t)~RELAY_MASK;
  fail_safe = FS_HB_LOST;
  heartbeat_since_trip = false;
  send_line(LINE_REPORT);
}

// ---------------------------------------------------------------------------------------------
// Command parser: by grammar, one byte at a time.
enum ParseState { P_PIN, P_VALUE, P_TIMEOUT };
static uint8_t parse_state = P_PIN;
static uint8_t pin_value, pin_digits;
static uint16_t timeout_value;
static uint8_t timeout_digits;

static void on_letter(uint8_t byte, uint32_t now) {
  switch (byte) {
    case 'H':
      last_heartbeat_ms = now;
      if (fail_safe == FS_OFF) fail_safe = FS_ARMED;
      if (fail_safe == FS_HB_LOST) heartbeat_since_trip = true;
      break;
    case '?':
      send_line(LINE_REPLY);
      break;
    case 'R':
      if (fail_safe == FS_HB_LOST && heartbeat_since_trip &&
          now - last_heartbeat_ms <= heartbeat_timeout_ms) {
        fail_safe = FS_ARMED;
      } else if (fail_safe == FS_GND_FAULT && !gnd_fault && now - last_heartbeat_ms <= heartbeat_timeout_ms) {
        fail_safe = FS_ARMED;
      }
      send_line(LINE_REPLY);
      break;
    case 'T':
      parse_state = P_TIMEOUT;
      timeout_value = 0;
      timeout_digits = 0;
      break;
#ifdef CELLGUARD_BOARD_TEST_HOOKS
    case 'X':  // test builds only: the main loop hangs, the watchdog must reset the board
      for (;;) {
      }
#endif
    default:
      break;  // unknown byte: ignored
  }
}

static void parse_byte(uint8_t byte, uint32_t now) {
  const bool digit = byte >= '0' && byte <= '9';
  switch (parse_state) {
    case P_TIMEOUT:
      if (digit) {
        timeout_value = (uint16_t)(timeout_value * 10 + (byte - '0'));
        if (++timeout_digits == 4) {
          if (timeout_value >= TIMEOUT_MIN_MS && timeout_value <= TIMEOUT_MAX_MS)
            heartbeat_timeout_ms = timeout_value;
          parse_state = P_PIN;
          pin_digits = 0;
          send_line(LINE_REPLY);  // confirms the timeout in force
        }
        return;
      }
      parse_state = P_PIN;  // not 4 digits: ignored; the byte starts whatever comes next
      pin_digits = 0;
      break;
    case P_VALUE:
      if (byte == '0' || byte == '1') {
        write_pin(pin_value, byte == '1');
        parse_state = P_PIN;
        pin_digits = 0;
        return;
      }
      parse_state = P_PIN;  // malformed pair: dropped; a digit may start the next one
      pin_digits = 0;
      break;
    case P_PIN:
      break;
  }
  if (digit) {
    if (pin_digits == 2) pin_digits = 0;  // three digits: not a pin; keep the last as a new start
    pin_value = (uint8_t)(pin_digits == 0 ? byte - '0' : pin_value * 10 + (byte - '0'));
    ++pin_digits;
  } else if (byte == ':' && pin_digits > 0) {
    parse_state = P_VALUE;
  } else {
    pin_digits = 0;  // separators (`&`, CR, LF, space) and anything else end a partial pair
    if (byte >= '?' && byte <= 'Z') on_letter(byte, now);
  }
}

// ---------------------------------------------------------------------------------------------
int main(void) {
  // Outputs low first (relays de-energised), then the ground-fault input with its pull-up.
  PORTD = (uint8_t)(1 << GND_FAULT_BIT);
  DDRD = OUTPUT_MASK;

  TCCR0A = (uint8_t)(1 << WGM01);
  TCCR0B = (uint8_t)((1 << CS01) | (1 << CS00));  // 16 MHz / 64 / 250 = 1 kHz
  OCR0A = 249;
  TIMSK0 = (uint8_t)(1 << OCIE0A);

  UBRR0 = 103;  // 9600 baud at 16 MHz (0.2 % error)
  UCSR0A = 0;
  UCSR0C = (uint8_t)((1 << UCSZ01) | (1 << UCSZ00));  // 8N1
  UCSR0B = (uint8_t)((1 << RXEN0) | (1 << TXEN0) | (1 << RXCIE0));

  ADCSRA = (uint8_t)((1 << ADEN) | (1 << ADPS2) | (1 << ADPS1) | (1 << ADPS0));  // 125 kHz ADC clock
  DIDR0 = 0x07;

  wdt_enable(WDTO_250MS);
  sei();

  gnd_fault = gnd_fault_raw();
  send_line(LINE_HELLO);
  uint32_t last_report = now_ms();
  uint32_t gnd_changed_at = last_report;
  bool gnd_raw_last = gnd_fault;

  for (;;) {
    wdt_reset();
    const uint32_t now = now_ms();
    uint8_t byte = 0;
    while (rx_pop(&byte)) parse_byte(byte, now);

    if (fail_safe == FS_ARMED && now - last_heartbeat_ms > heartbeat_timeout_ms) trip();

    // The alarm input is reported at once when it changes (debounced), not only once a second.
    const bool raw = gnd_fault_raw();
    if (raw != gnd_raw_last) {
      gnd_raw_last = raw;
      gnd_changed_at = now;
    } else if (raw != gnd_fault && now - gnd_changed_at >= GND_FAULT_DEBOUNCE_MS) {
      gnd_fault = raw;
      if (gnd_fault && fail_safe == FS_ARMED) {
        PORTD &= (uint8_t)~RELAY_MASK;  // the board's own answer to an insulation fault
        fail_safe = FS_GND_FAULT;
      }
      send_line(LINE_REPORT);
    }

    if (now - last_report >= REPORT_PERIOD_MS) {
      last_report += REPORT_PERIOD_MS;
      send_line(LINE_REPORT);
    }
  }
}
