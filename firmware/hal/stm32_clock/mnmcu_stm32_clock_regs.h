/*
 * The registers the STM32 clock setup touches, by address and bit position,
 * so the same code serves the STM32Cube projects and the bare-metal build
 * (which has no ST header). Names carry an MNMCU_ prefix and never clash
 * with ST's device headers; a framework-source test compares every value
 * below with ST's CMSIS device headers (MNMCU_STM32CUBE_SOURCES).
 *
 * Sources, by family:
 *   STM32F405/407   RM0090 Rev 19: 2.3 memory map, 3.9 FLASH_ACR, 5.4 PWR_CR,
 *                   7.3 RCC_CR/PLLCFGR/CFGR/APB1ENR
 *   STM32F446       RM0390 Rev 6: 3.8 FLASH_ACR, 5.4 PWR_CR/CSR (VOS, over-drive),
 *                   6.3 RCC
 *   STM32F74x/75x   RM0385 Rev 8: 3.7 FLASH_ACR, 4.4 PWR_CR1/CSR1, 5.3 RCC
 *   STM32H742/743   RM0433 Rev 8: 4.9 FLASH_ACR, 6.8 PWR_CSR1/CR3/D3CR, 8.7 RCC
 */
#ifndef MNMCU_STM32_CLOCK_REGS_H
#define MNMCU_STM32_CLOCK_REGS_H

#if defined(MNMCU_CLOCK_CHIP_STM32F40X) || defined(MNMCU_CLOCK_CHIP_STM32F446) ||             \
    defined(MNMCU_CLOCK_CHIP_STM32F7)
#define MNMCU_CLOCK_FAMILY_F4F7 1

#define MNMCU_RCC_BASE 0x40023800u
#define MNMCU_RCC_CR (MNMCU_RCC_BASE + 0x00u)
#define MNMCU_RCC_PLLCFGR (MNMCU_RCC_BASE + 0x04u)
#define MNMCU_RCC_CFGR (MNMCU_RCC_BASE + 0x08u)
#define MNMCU_RCC_APB1ENR (MNMCU_RCC_BASE + 0x40u)

#define MNMCU_RCC_CR_HSION_POS 0u
#define MNMCU_RCC_CR_HSIRDY_POS 1u
#define MNMCU_RCC_CR_HSEON_POS 16u
#define MNMCU_RCC_CR_HSERDY_POS 17u
#define MNMCU_RCC_CR_HSEBYP_POS 18u
#define MNMCU_RCC_CR_PLLON_POS 24u
#define MNMCU_RCC_CR_PLLRDY_POS 25u

#define MNMCU_RCC_PLLCFGR_PLLM_POS 0u  /* 6 bits: 2..63 */
#define MNMCU_RCC_PLLCFGR_PLLN_POS 6u  /* 9 bits */
#define MNMCU_RCC_PLLCFGR_PLLP_POS 16u /* 2 bits: 0 = /2, 1 = /4, 2 = /6, 3 = /8 */
#define MNMCU_RCC_PLLCFGR_PLLSRC_POS 22u
#define MNMCU_RCC_PLLCFGR_PLLQ_POS 24u /* 4 bits */
#define MNMCU_RCC_PLLCFGR_PLLR_POS 28u /* 3 bits, F446 only (reserved on the F40x, F74x/F75x) */

#define MNMCU_RCC_CFGR_SW_POS 0u   /* 2 bits: 0 HSI, 1 HSE, 2 PLL */
#define MNMCU_RCC_CFGR_SWS_POS 2u  /* 2 bits, same coding */
#define MNMCU_RCC_CFGR_HPRE_POS 4u /* 4 bits */
#define MNMCU_RCC_CFGR_PPRE1_POS 10u
#define MNMCU_RCC_CFGR_PPRE2_POS 13u
#define MNMCU_RCC_CFGR_SW_MASK 3u
#define MNMCU_RCC_CFGR_SW_PLL 2u

#define MNMCU_RCC_APB1ENR_PWREN_POS 28u

#define MNMCU_PWR_BASE 0x40007000u
#define MNMCU_PWR_CR (MNMCU_PWR_BASE + 0x00u)  /* PWR_CR1 on the F7 */
#define MNMCU_PWR_CSR (MNMCU_PWR_BASE + 0x04u) /* PWR_CSR1 on the F7 */
#define MNMCU_PWR_CR_VOS_POS 14u /* F405/407: 1 bit (1 = scale 1); F446, F7: 2 bits (3 = scale 1) */
#define MNMCU_PWR_CR_ODEN_POS 16u
#define MNMCU_PWR_CR_ODSWEN_POS 17u
#define MNMCU_PWR_CSR_ODRDY_POS 16u
#define MNMCU_PWR_CSR_ODSWRDY_POS 17u

#define MNMCU_FLASH_BASE 0x40023C00u
#define MNMCU_FLASH_ACR (MNMCU_FLASH_BASE + 0x00u)
#define MNMCU_FLASH_ACR_LATENCY_POS 0u /* 4 bits (3 on the F405/407, bit 3 reserved 0) */
#define MNMCU_FLASH_ACR_PRFTEN_POS 8u
#define MNMCU_FLASH_ACR_ICEN_POS 9u  /* F4: instruction cache */
#define MNMCU_FLASH_ACR_DCEN_POS 10u /* F4: data cache */
#define MNMCU_FLASH_ACR_ARTEN_POS 9u /* F7: ART accelerator */

#elif defined(MNMCU_CLOCK_CHIP_STM32H7)
#define MNMCU_CLOCK_FAMILY_H7 1

#define MNMCU_RCC_BASE 0x58024400u
#define MNMCU_RCC_CR (MNMCU_RCC_BASE + 0x00u)
#define MNMCU_RCC_CFGR (MNMCU_RCC_BASE + 0x10u)
#define MNMCU_RCC_D1CFGR (MNMCU_RCC_BASE + 0x18u)
#define MNMCU_RCC_D2CFGR (MNMCU_RCC_BASE + 0x1Cu)
#define MNMCU_RCC_D3CFGR (MNMCU_RCC_BASE + 0x20u)
#define MNMCU_RCC_PLLCKSELR (MNMCU_RCC_BASE + 0x28u)
#define MNMCU_RCC_PLLCFGR (MNMCU_RCC_BASE + 0x2Cu)
#define MNMCU_RCC_PLL1DIVR (MNMCU_RCC_BASE + 0x30u)

#define MNMCU_RCC_CR_HSION_POS 0u
#define MNMCU_RCC_CR_HSIRDY_POS 2u
#define MNMCU_RCC_CR_HSEON_POS 16u
#define MNMCU_RCC_CR_HSERDY_POS 17u
#define MNMCU_RCC_CR_HSEBYP_POS 18u
#define MNMCU_RCC_CR_PLLON_POS 24u  /* PLL1ON */
#define MNMCU_RCC_CR_PLLRDY_POS 25u /* PLL1RDY */

#define MNMCU_RCC_CFGR_SW_POS 0u  /* 3 bits: 0 HSI, 1 CSI, 2 HSE, 3 PLL1 */
#define MNMCU_RCC_CFGR_SWS_POS 3u /* 3 bits, same coding */
#define MNMCU_RCC_CFGR_SW_MASK 7u
#define MNMCU_RCC_CFGR_SW_PLL 3u
#define MNMCU_RCC_D1CFGR_HPRE_POS 0u   /* 4 bits */
#define MNMCU_RCC_D1CFGR_D1PPRE_POS 4u /* 3 bits: APB3 */
#define MNMCU_RCC_D1CFGR_D1CPRE_POS 8u /* 4 bits: core clock */
#define MNMCU_RCC_D2CFGR_D2PPRE1_POS 4u /* APB1 */
#define MNMCU_RCC_D2CFGR_D2PPRE2_POS 8u /* APB2 */
#define MNMCU_RCC_D3CFGR_D3PPRE_POS 4u  /* APB4 */

#define MNMCU_RCC_PLLCKSELR_PLLSRC_POS 0u /* 2 bits: 0 HSI, 1 CSI, 2 HSE */
#define MNMCU_RCC_PLLCKSELR_DIVM1_POS 4u  /* 6 bits */
#define MNMCU_RCC_PLLCFGR_PLL1FRACEN_POS 0u
#define MNMCU_RCC_PLLCFGR_PLL1VCOSEL_POS 1u /* 0: wide VCO, 192..836 MHz */
#define MNMCU_RCC_PLLCFGR_PLL1RGE_POS 2u    /* 2 bits: input 1-2, 2-4, 4-8, 8-16 MHz */
#define MNMCU_RCC_PLLCFGR_DIVP1EN_POS 16u
#define MNMCU_RCC_PLLCFGR_DIVQ1EN_POS 17u
#define MNMCU_RCC_PLLCFGR_DIVR1EN_POS 18u
#define MNMCU_RCC_PLL1DIVR_N1_POS 0u  /* 9 bits, N - 1 */
#define MNMCU_RCC_PLL1DIVR_P1_POS 9u  /* 7 bits, P - 1 */
#define MNMCU_RCC_PLL1DIVR_Q1_POS 16u /* 7 bits, Q - 1 */
#define MNMCU_RCC_PLL1DIVR_R1_POS 24u /* 7 bits, R - 1 */

#define MNMCU_PWR_BASE 0x58024800u
#define MNMCU_PWR_CSR1 (MNMCU_PWR_BASE + 0x04u)
#define MNMCU_PWR_CR3 (MNMCU_PWR_BASE + 0x0Cu)
#define MNMCU_PWR_D3CR (MNMCU_PWR_BASE + 0x18u)
#define MNMCU_PWR_CSR1_ACTVOSRDY_POS 13u
#define MNMCU_PWR_CR3_BYPASS_POS 0u
#define MNMCU_PWR_CR3_LDOEN_POS 1u
#define MNMCU_PWR_CR3_SCUEN_POS 2u
#define MNMCU_PWR_D3CR_VOSRDY_POS 13u
#define MNMCU_PWR_D3CR_VOS_POS 14u /* 2 bits: 1 scale 3, 2 scale 2, 3 scale 1 */

#define MNMCU_FLASH_BASE 0x52002000u
#define MNMCU_FLASH_ACR (MNMCU_FLASH_BASE + 0x00u)
#define MNMCU_FLASH_ACR_LATENCY_POS 0u /* 4 bits; WRHIGHFREQ (bits 5:4) keeps its reset value */

#else
#error "no STM32 clock chip selected: mnmcu_clock_config.h defines MNMCU_CLOCK_CHIP_<CHIP>"
#endif

#endif /* MNMCU_STM32_CLOCK_REGS_H */
